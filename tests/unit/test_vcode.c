/* test_vcode.c: unit tests of the one-time verification codes (common/vcode.c): digits and
 * their spread, the MAC against an independent HMAC-SHA256 (known values computed with Python's
 * hmac module), and the checks that must say no. */
#include "antre/vcode.h"

#include <criterion/criterion.h>
#include <string.h>

static const uint8_t pepper[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
#define VID "0123456789abcdef0123456789abcdef"

Test(vcode, generate_gives_digits_only_and_refuses_bad_sizes)
{
    char c[16];
    for (int d = VCODE_DIGITS_MIN; d <= VCODE_DIGITS_MAX; d++) {
        cr_assert_eq(vcode_generate(d, c, sizeof c), 0);
        cr_assert_eq(strlen(c), (size_t)d);
        for (int i = 0; i < d; i++) cr_assert(c[i] >= '0' && c[i] <= '9', "%s", c);
    }
    cr_assert_eq(vcode_generate(VCODE_DIGITS_MIN - 1, c, sizeof c), -1);
    cr_assert_eq(vcode_generate(VCODE_DIGITS_MAX + 1, c, sizeof c), -1);
    cr_assert_eq(vcode_generate(6, c, 6), -1); /* no room for the NUL */
}

Test(vcode, every_digit_is_about_equally_likely)
{
    /* 60,000 digits: each of the ten expected 6,000 times; a bias of 250 vs 256 (no rejection)
     * would show as about 6,140 for 0-5 and 5,790 for 6-9. Bounds: ±4.5 sigma (sigma ~73). */
    int count[10] = {0};
    char c[11];
    for (int i = 0; i < 6000; i++) {
        cr_assert_eq(vcode_generate(10, c, sizeof c), 0);
        for (int k = 0; k < 10; k++) count[c[k] - '0']++;
    }
    for (int k = 0; k < 10; k++)
        cr_assert(count[k] > 5670 && count[k] < 6330, "%d: %d", k, count[k]);
}

Test(vcode, mac_is_hmac_sha256_of_vid_colon_code_under_the_derived_key)
{
    uint8_t key[VCODE_KEY_BYTES];
    vcode_key(pepper, key);
    char hex[VCODE_MAC_HEX + 1];
    vcode_mac(key, VID, "123456", 6, hex);
    /* python3 -c 'import hmac,hashlib; p=bytes(range(1,33));
     *   k=hmac.new(p,b"antre/verification-code/v1",hashlib.sha256).digest();
     *   print(hmac.new(k,b"0123456789abcdef0123456789abcdef:123456",hashlib.sha256).hexdigest())' */
    cr_assert_str_eq(hex, "d4f96b2724cc55ff9d34e9d68ef4d0cd2277eb08707ef3bee07be5664938e392");
}

Test(vcode, check_says_yes_only_to_the_right_code_for_the_right_id)
{
    uint8_t key[VCODE_KEY_BYTES];
    vcode_key(pepper, key);
    char stored[VCODE_MAC_HEX + 1];
    vcode_mac(key, VID, "004217", 6, stored);
    cr_assert_eq(vcode_check(key, VID, stored, 64, 6, "004217", 6), 1);
    cr_assert_eq(vcode_check(key, VID, stored, 64, 6, "004218", 6), 0);
    cr_assert_eq(vcode_check(key, VID, stored, 64, 6, "04217", 5), 0);
    cr_assert_eq(vcode_check(key, VID, stored, 64, 6, "0042170", 7), 0);
    cr_assert_eq(vcode_check(key, VID, stored, 64, 6, "00421a", 6), 0);
    cr_assert_eq(vcode_check(key, "ffffffffffffffffffffffffffffffff", stored, 64, 6, "004217", 6),
                 0);
    cr_assert_eq(vcode_check(key, VID, NULL, 0, 6, "004217", 6), 0);
    cr_assert_eq(vcode_check(key, VID, stored, 63, 6, "004217", 6), 0);
    /* Another pepper's key: no. */
    uint8_t other[32], key2[VCODE_KEY_BYTES];
    memset(other, 7, sizeof other);
    vcode_key(other, key2);
    cr_assert_eq(vcode_check(key2, VID, stored, 64, 6, "004217", 6), 0);
    /* A long submitted code is refused, not overflowing anything. */
    char longcode[200];
    memset(longcode, '1', sizeof longcode);
    cr_assert_eq(vcode_check(key, VID, stored, 64, 6, longcode, sizeof longcode), 0);
}
