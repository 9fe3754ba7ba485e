/* test_validate.c: unit tests of the registration field checks (common/validate.c).
 *
 * Every rule and every refusal code of include/antre/validate.h, at its boundaries. Each refusal
 * goes through refused(), which also checks the messages: both present, different, valid UTF-8
 * (checked by a decoder written here, not the one under test), complete (ending in a full stop,
 * well short of the 256-byte buffer, so none was cut) and never containing a raw control
 * character. Dates are judged against a fixed "today" passed in, so nothing depends on the
 * clock. */
#include "antre/validate.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const struct validate_limits WORK = {18, 64};

/* ---- helpers ----------------------------------------------------------------------------- */

/* 1 when S is well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        int n;
        unsigned long v, lo;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, v = c & 0x1F, lo = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, v = c & 0x0F, lo = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, v = c & 0x07, lo = 0x10000;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            v = (v << 6) | (s[i] & 0x3F);
        }
        if (v < lo || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        s += n + 1;
    }
    return 1;
}

static void check_message(const char *what, const char *msg)
{
    size_t n = strlen(msg);
    cr_assert(n > 10, "%s message missing: \"%s\"", what, msg);
    cr_assert(n < 250, "%s message near the buffer limit (%zu bytes): %s", what, n, msg);
    cr_assert(utf8_ok(msg), "%s message is not valid UTF-8: %s", what, msg);
    cr_assert(msg[n - 1] == '.', "%s message does not end in a full stop: %s", what, msg);
    for (size_t i = 0; i < n; i++)
        cr_assert((unsigned char)msg[i] >= 0x20, "%s message has a control character: %s", what,
                  msg);
}

/* Assert that RC and E are a refusal of FIELD with CODE, with sound messages. */
static void refused(int rc, const struct validate_error *e, const char *field, const char *code)
{
    cr_assert_eq(rc, -1, "expected refusal %s/%s, got rc=%d", field, code, rc);
    cr_assert_not_null(e->code, "refusal without a code (expected %s)", code);
    cr_assert_not_null(e->field, "refusal without a field (expected %s)", field);
    cr_assert_str_eq(e->code, code, "code: got %s, expected %s (%s)", e->code, code, e->msg_en);
    cr_assert_str_eq(e->field, field, "field: got %s, expected %s", e->field, field);
    check_message("Indonesian", e->msg_id);
    check_message("English", e->msg_en);
    cr_assert_str_neq(e->msg_id, e->msg_en, "the two messages are the same: %s", e->msg_id);
    cr_assert(utf8_ok(e->suggestion));
}

static void accepted(int rc, const struct validate_error *e)
{
    cr_assert_eq(rc, 0, "expected acceptance, got %s/%s: %s", e->field ? e->field : "-",
                 e->code ? e->code : "-", e->msg_en);
    cr_assert_null(e->code);
    cr_assert_null(e->field);
    cr_assert_str_eq(e->msg_id, "");
    cr_assert_str_eq(e->msg_en, "");
    cr_assert_str_eq(e->suggestion, "");
}

static void has(const char *msg, const char *part)
{
    cr_assert_not_null(strstr(msg, part), "\"%s\" not in: %s", part, msg);
}

/* A NIK from its parts: province, regency, district, DDMMYY, serial. */
static const char *nik_of(char buf[17], const char *pp, const char *kk, const char *cc,
                          const char *date6)
{
    snprintf(buf, 17, "%s%s%s%s0001", pp, kk, cc, date6);
    cr_assert_eq(strlen(buf), 16);
    return buf;
}

/* ---- NIK ---------------------------------------------------------------------------------- */

Test(validate, province_codes_exactly_the_listed_ranges)
{
    static const int lo[] = {11, 21, 31, 51, 61, 71, 81, 91};
    static const int hi[] = {19, 21, 36, 53, 65, 76, 82, 96};
    for (int c = -5; c < 105; c++) {
        int want = 0;
        for (int r = 0; r < 8; r++)
            if (c >= lo[r] && c <= hi[r]) want = 1;
        cr_assert_eq(validate_is_province(c), want, "province %d", c);
    }
}

Test(validate, nik_valid_man_and_woman)
{
    struct validate_error e;
    accepted(validate_nik("3201011305900001", &e), &e);
    accepted(validate_nik("3201015305900001", &e), &e); /* day 13 + 40: a woman */
    cr_assert_eq(validate_nik_sex("3201011305900001"), VALIDATE_SEX_MALE);
    cr_assert_eq(validate_nik_sex("3201015305900001"), VALIDATE_SEX_FEMALE);
    cr_assert_eq(validate_nik_sex("3201019905900001"), VALIDATE_SEX_UNKNOWN);
    cr_assert_eq(validate_nik_sex(NULL), VALIDATE_SEX_UNKNOWN);
    /* Every listed province in a NIK. */
    char b[17], pp[3];
    for (int c = 0; c < 100; c++) {
        snprintf(pp, sizeof pp, "%02d", c);
        int rc = validate_nik(nik_of(b, pp, "01", "01", "130590"), &e);
        if (validate_is_province(c)) accepted(rc, &e);
        else refused(rc, &e, "nik", "nik_unknown_province");
    }
}

Test(validate, nik_required)
{
    struct validate_error e;
    refused(validate_nik(NULL, &e), &e, "nik", "required");
    refused(validate_nik("", &e), &e, "nik", "required");
    refused(validate_nik("   ", &e), &e, "nik", "required");
    has(e.msg_id, "wajib diisi");
    has(e.msg_en, "required");
}

Test(validate, nik_not_numeric)
{
    struct validate_error e;
    /* 16 characters, one a letter. */
    refused(validate_nik("320101130590000A", &e), &e, "nik", "nik_not_numeric");
    has(e.msg_id, "karakter ke-16 adalah \"A\"");
    has(e.msg_en, "character 16 is \"A\"");
    refused(validate_nik("3201 0113 0590 0001", &e), &e, "nik", "nik_not_numeric");
    has(e.msg_id, "karakter ke-5 adalah spasi");
    has(e.msg_en, "character 5 is a space");
    refused(validate_nik("3201-01130590001", &e), &e, "nik", "nik_not_numeric");
    refused(validate_nik("32010113059000\xd9\xa1", &e), &e, "nik", "nik_not_numeric");
    has(e.msg_en, "non-ASCII");
    refused(validate_nik("320101130590000\n", &e), &e, "nik", "nik_not_numeric");
    has(e.msg_en, "control character");
    refused(validate_nik("+3201011305900001", &e), &e, "nik", "nik_not_numeric");
}

Test(validate, nik_wrong_length)
{
    struct validate_error e;
    refused(validate_nik("320101130590001", &e), &e, "nik", "nik_wrong_length");
    has(e.msg_id, "NIK harus 16 digit angka; yang Anda kirim 15 digit.");
    has(e.msg_en, "The NIK must be 16 digits; you sent 15.");
    refused(validate_nik("32010113059000011", &e), &e, "nik", "nik_wrong_length");
    has(e.msg_id, "17 digit");
    refused(validate_nik("1", &e), &e, "nik", "nik_wrong_length");
}

Test(validate, nik_province_20_refused)
{
    struct validate_error e;
    refused(validate_nik("2001011305900001", &e), &e, "nik", "nik_unknown_province");
    has(e.msg_id, "Dua digit pertama NIK (20) bukan kode provinsi");
    has(e.msg_en, "The first two digits of the NIK (20) are not a province code");
    accepted(validate_nik("2101011305900001", &e), &e);
    refused(validate_nik("0001011305900001", &e), &e, "nik", "nik_unknown_province");
    refused(validate_nik("9701011305900001", &e), &e, "nik", "nik_unknown_province");
}

Test(validate, nik_regency_and_district_not_00)
{
    struct validate_error e;
    refused(validate_nik("3200011305900001", &e), &e, "nik", "nik_zero_region");
    has(e.msg_id, "Digit 3–4");
    has(e.msg_id, "kabupaten/kota");
    has(e.msg_en, "regency");
    refused(validate_nik("3201001305900001", &e), &e, "nik", "nik_zero_region");
    has(e.msg_id, "Digit 5–6");
    has(e.msg_id, "kecamatan");
    has(e.msg_en, "district");
    accepted(validate_nik("3210101305900001", &e), &e);
}

Test(validate, nik_date_digits)
{
    struct validate_error e;
    char b[17];
    /* Days: 01-31 for men, 41-71 for women. */
    static const char *good_days[] = {"01", "15", "31", "41", "55", "71"};
    static const char *bad_days[] = {"00", "32", "39", "40", "72", "99"};
    for (size_t i = 0; i < 6; i++) {
        char d6[7];
        snprintf(d6, sizeof d6, "%s0190", good_days[i]);
        accepted(validate_nik(nik_of(b, "32", "01", "01", d6), &e), &e);
        snprintf(d6, sizeof d6, "%s0190", bad_days[i]);
        refused(validate_nik(nik_of(b, "32", "01", "01", d6), &e), &e, "nik", "nik_invalid_date");
        has(e.msg_id, "Digit 7–8");
        has(e.msg_id, "41–71 untuk perempuan");
        has(e.msg_en, "41–71 for women");
    }
    /* Months. */
    refused(validate_nik(nik_of(b, "32", "01", "01", "010090"), &e), &e, "nik", "nik_invalid_date");
    has(e.msg_id, "Digit 9–10");
    has(e.msg_id, "01–12");
    refused(validate_nik(nik_of(b, "32", "01", "01", "011390"), &e), &e, "nik", "nik_invalid_date");
    accepted(validate_nik(nik_of(b, "32", "01", "01", "011290"), &e), &e);
    /* Day within the month; 29 February only when YY can be a leap year. */
    refused(validate_nik(nik_of(b, "32", "01", "01", "310490"), &e), &e, "nik", "nik_invalid_date");
    has(e.msg_id, "bulan 04 tidak punya tanggal 31");
    refused(validate_nik(nik_of(b, "32", "01", "01", "300290"), &e), &e, "nik", "nik_invalid_date");
    refused(validate_nik(nik_of(b, "32", "01", "01", "290201"), &e), &e, "nik", "nik_invalid_date");
    accepted(validate_nik(nik_of(b, "32", "01", "01", "290200"), &e), &e);
    accepted(validate_nik(nik_of(b, "32", "01", "01", "290204"), &e), &e);
    accepted(validate_nik(nik_of(b, "32", "01", "01", "690204"), &e), &e); /* woman, 29 Feb */
    refused(validate_nik(nik_of(b, "32", "01", "01", "710490"), &e), &e, "nik",
            "nik_invalid_date"); /* woman, 31 April */
}

/* ---- KK ---------------------------------------------------------------------------------- */

Test(validate, kk_rules)
{
    struct validate_error e;
    accepted(validate_kk("3201012505150003", &e), &e);
    accepted(validate_kk("9601010000000000", &e), &e); /* only digits and province matter */
    refused(validate_kk(NULL, &e), &e, "kk", "required");
    has(e.msg_id, "Nomor KK wajib diisi");
    refused(validate_kk("", &e), &e, "kk", "required");
    refused(validate_kk("32010125051500O3", &e), &e, "kk", "kk_not_numeric");
    has(e.msg_id, "Nomor KK hanya boleh berisi angka");
    has(e.msg_id, "karakter ke-15 adalah \"O\"");
    refused(validate_kk("320101250515000", &e), &e, "kk", "kk_wrong_length");
    has(e.msg_id, "Nomor KK harus 16 digit angka; yang Anda kirim 15 digit.");
    has(e.msg_en, "The KK number must be 16 digits; you sent 15.");
    refused(validate_kk("2001012505150003", &e), &e, "kk", "kk_unknown_province");
    has(e.msg_id, "Dua digit pertama nomor KK (20)");
    has(e.msg_en, "of the KK number (20)");
    refused(validate_kk("9901012505150003", &e), &e, "kk", "kk_unknown_province");
}

/* ---- birth date -------------------------------------------------------------------------- */

Test(validate, birth_date_valid_with_outputs)
{
    struct validate_error e;
    int y = 0, m = 0, d = 0;
    accepted(validate_birth_date("1990-05-13", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e);
    cr_assert_eq(y, 1990);
    cr_assert_eq(m, 5);
    cr_assert_eq(d, 13);
    accepted(validate_birth_date("1990-05-13", 2025, 6, 1, &WORK, NULL, NULL, NULL, &e), &e);
}

Test(validate, birth_date_format)
{
    struct validate_error e;
    int y, m, d;
    refused(validate_birth_date(NULL, 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "required");
    refused(validate_birth_date("", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "required");
    /* The common mistake, DD-MM-YYYY, comes back with the ISO form as a suggestion. */
    refused(validate_birth_date("13-05-1990", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    has(e.msg_id, "TTTT-BB-HH");
    has(e.msg_id, "\"13-05-1990\"");
    has(e.msg_en, "YYYY-MM-DD");
    cr_assert_str_eq(e.suggestion, "1990-05-13");
    refused(validate_birth_date("13/05/1990", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    cr_assert_str_eq(e.suggestion, "1990-05-13");
    refused(validate_birth_date("31/02/1990", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    cr_assert_str_eq(e.suggestion, "");
    static const char *bad[] = {"1990/05/13",       "1990-5-13",   "1990-05-3",  "90-05-13",
                                "1990-05-13T00:00", " 1990-05-13", "1990-O5-13", "abcd",
                                "+990-05-13",       "1990-05-13\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        refused(validate_birth_date(bad[i], 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
                "invalid_date");
        cr_assert_str_eq(e.suggestion, "");
    }
    /* Input that cannot be quoted safely is not echoed. */
    refused(validate_birth_date("\"1990\"-05-13", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e,
            "birth_date", "invalid_date");
    cr_assert_null(strstr(e.msg_id, "\"1990\""));
}

Test(validate, birth_date_real_dates_and_leap_years)
{
    struct validate_error e;
    int y, m, d;
    accepted(validate_birth_date("2000-02-29", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e);
    accepted(validate_birth_date("1996-02-29", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e);
    refused(validate_birth_date("1900-02-29", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    has(e.msg_id, "1900 bukan tahun kabisat");
    has(e.msg_en, "1900 is not a leap year");
    refused(validate_birth_date("1999-02-29", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    refused(validate_birth_date("1990-02-30", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    has(e.msg_id, "hanya sampai tanggal 28");
    refused(validate_birth_date("1990-04-31", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    has(e.msg_en, "30 days");
    refused(validate_birth_date("1990-13-01", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    has(e.msg_id, "Bulan 13 tidak ada");
    refused(validate_birth_date("1990-00-10", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    refused(validate_birth_date("1990-01-00", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    refused(validate_birth_date("0000-01-01", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    accepted(validate_birth_date("1990-12-31", 2025, 6, 1, NULL, &y, &m, &d, &e), &e);
    accepted(validate_birth_date("1990-01-31", 2025, 6, 1, NULL, &y, &m, &d, &e), &e);
}

Test(validate, birth_date_not_in_the_future)
{
    struct validate_error e;
    int y, m, d;
    refused(validate_birth_date("2025-06-02", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    has(e.msg_id, "masa depan");
    has(e.msg_en, "future");
    refused(validate_birth_date("2026-01-01", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    refused(validate_birth_date("2025-07-01", 2025, 6, 1, NULL, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date");
    /* Born today, without age limits: a real, past-or-present date. */
    accepted(validate_birth_date("2025-06-01", 2025, 6, 1, NULL, &y, &m, &d, &e), &e);
}

Test(validate, birth_date_working_age_boundaries)
{
    struct validate_error e;
    int y, m, d;
    /* Exactly 18 today. */
    accepted(validate_birth_date("2007-06-01", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e);
    /* 18 tomorrow. */
    refused(validate_birth_date("2007-06-02", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "too_young");
    has(e.msg_id, "Umur Anda 17 tahun");
    has(e.msg_id, "18–64 tahun");
    has(e.msg_id, "mulai 02-06-2025");
    has(e.msg_en, "You are 17");
    has(e.msg_en, "from 2025-06-02");
    refused(validate_birth_date("2015-01-01", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "too_young");
    /* 64 until the 65th birthday. */
    accepted(validate_birth_date("1960-06-02", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e);
    refused(validate_birth_date("1960-06-01", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "too_old");
    has(e.msg_id, "Umur Anda 65 tahun");
    has(e.msg_en, "You are 65");
    has(e.msg_en, "ages 18 to 64");
    refused(validate_birth_date("1900-01-01", 2025, 6, 1, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "too_old");
    /* Other bounds from the configuration. */
    const struct validate_limits l = {17, 30};
    accepted(validate_birth_date("2008-06-01", 2025, 6, 1, &l, &y, &m, &d, &e), &e);
    refused(validate_birth_date("1994-06-01", 2025, 6, 1, &l, &y, &m, &d, &e), &e, "birth_date",
            "too_old");
    /* No limits: no age check. */
    accepted(validate_birth_date("1900-01-01", 2025, 6, 1, NULL, &y, &m, &d, &e), &e);
}

Test(validate, birth_date_leap_day_birthday)
{
    struct validate_error e;
    int y, m, d;
    /* Born 29 Feb 2008: in 2026 (a common year) 18 on 1 March, not on 28 February. */
    refused(validate_birth_date("2008-02-29", 2026, 2, 28, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "too_young");
    has(e.msg_en, "from 2026-03-01");
    has(e.msg_id, "mulai 01-03-2026");
    accepted(validate_birth_date("2008-02-29", 2026, 3, 1, &WORK, &y, &m, &d, &e), &e);
    /* In a leap year, on the day itself. */
    refused(validate_birth_date("2010-02-29", 2028, 2, 28, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "invalid_date"); /* 2010 was no leap year */
    refused(validate_birth_date("2012-02-29", 2030, 2, 28, &WORK, &y, &m, &d, &e), &e, "birth_date",
            "too_young");
    accepted(validate_birth_date("2012-02-29", 2030, 3, 1, &WORK, &y, &m, &d, &e), &e);
    accepted(validate_birth_date("2004-02-29", 2022, 2, 28, &(struct validate_limits){17, 64}, &y,
                                 &m, &d, &e),
             &e);
}

/* ---- NIK against birth date --------------------------------------------------------------- */

Test(validate, nik_matches_birth_date)
{
    struct validate_error e;
    accepted(validate_nik_matches_birth_date("3201011305900001", 1990, 5, 13, 0, &e), &e);
    /* A woman: day + 40. */
    accepted(validate_nik_matches_birth_date("3201015305900001", 1990, 5, 13, 0, &e), &e);
    /* Only the last two digits of the year are in the NIK. */
    accepted(validate_nik_matches_birth_date("3201010101010001", 2001, 1, 1, 0, &e), &e);
    accepted(validate_nik_matches_birth_date("3201010101000001", 2000, 1, 1, 0, &e), &e);
}

Test(validate, nik_birth_date_mismatch_names_the_digits)
{
    struct validate_error e;
    refused(validate_nik_matches_birth_date("3201011205900001", 1990, 5, 13, 0, &e), &e,
            "birth_date", "nik_birth_date_mismatch");
    has(e.msg_id, "Tanggal lahir 13-05-1990 tidak sesuai dengan NIK");
    has(e.msg_id, "digit 7–12 NIK (120590) menunjukkan 12-05-90");
    has(e.msg_id, "beda tanggal)");
    has(e.msg_id, "\"confirm_mismatch\": true");
    has(e.msg_id, "Dukcapil");
    has(e.msg_en, "give 12-05-90");
    has(e.msg_en, "1990-05-13");
    has(e.msg_en, "the day differs");
    has(e.msg_en, "\"confirm_mismatch\": true");
    cr_assert_str_eq(e.suggestion, "");

    refused(validate_nik_matches_birth_date("3201011306900001", 1990, 5, 13, 0, &e), &e,
            "birth_date", "nik_birth_date_mismatch");
    has(e.msg_id, "beda bulan)");
    has(e.msg_en, "the month differs");
    refused(validate_nik_matches_birth_date("3201011305910001", 1990, 5, 13, 0, &e), &e,
            "birth_date", "nik_birth_date_mismatch");
    has(e.msg_id, "beda tahun)");
    has(e.msg_en, "the year differs");
    /* The NIK holds no century: 90 agrees with 1990 and 2090 alike. */
    accepted(validate_nik_matches_birth_date("3201011305900001", 2090, 5, 13, 0, &e), &e);
}

Test(validate, nik_birth_date_mismatch_worst_case_fits)
{
    struct validate_error e;
    /* A woman's NIK, all three parts wrong: the longest message. */
    refused(validate_nik_matches_birth_date("3201015206910001", 1990, 5, 13, 0, &e), &e,
            "birth_date", "nik_birth_date_mismatch");
    has(e.msg_id, "(520691; perempuan: tanggal + 40) menunjukkan 12-06-91");
    has(e.msg_id, "beda tanggal, bulan dan tahun)");
    has(e.msg_en, "(520691; a woman: day + 40) give 12-06-91");
    has(e.msg_en, "the day, month and year differ");
    /* A man's NIK read as a woman's birth date is still judged on the digits alone. */
    refused(validate_nik_matches_birth_date("3201011305900001", 1990, 5, 53, 0, &e), &e,
            "birth_date", "nik_birth_date_mismatch");
}

Test(validate, nik_birth_date_mismatch_confirmed)
{
    struct validate_error e;
    accepted(validate_nik_matches_birth_date("3201011205900001", 1990, 5, 13, 1, &e), &e);
    accepted(validate_nik_matches_birth_date("3201015206910001", 1990, 5, 13, 1, &e), &e);
    /* Confirming a mismatch does not excuse an invalid NIK. */
    refused(validate_nik_matches_birth_date("2001011305900001", 1990, 5, 13, 1, &e), &e, "nik",
            "nik_unknown_province");
    refused(validate_nik_matches_birth_date("32010113059000", 1990, 5, 13, 0, &e), &e, "nik",
            "nik_wrong_length");
    refused(validate_nik_matches_birth_date(NULL, 1990, 5, 13, 1, &e), &e, "nik", "required");
}

/* ---- email ------------------------------------------------------------------------------- */

static void email_ok(const char *in, const char *want)
{
    struct validate_error e;
    char out[VALIDATE_EMAIL_MAX];
    accepted(validate_email(in, 0, out, sizeof out, &e), &e);
    cr_assert_str_eq(out, want, "email %s normalised to %s, expected %s", in, out, want);
}

static void email_bad(const char *in, const char *code, struct validate_error *e)
{
    char out[VALIDATE_EMAIL_MAX];
    strcpy(out, "junk");
    refused(validate_email(in, 0, out, sizeof out, e), e, "email", code);
    cr_assert_str_eq(out, "", "output not emptied on refusal of %s", in);
}

static void email_typo(const char *in, const char *suggestion)
{
    struct validate_error e;
    email_bad(in, "email_typo", &e);
    cr_assert_str_eq(e.suggestion, suggestion, "%s: suggestion %s, expected %s", in, e.suggestion,
                     suggestion);
    has(e.msg_id, "salah ketik");
    has(e.msg_id, "\"confirm_email\": true");
    has(e.msg_en, "\"confirm_email\": true");
}

Test(validate, email_valid_and_normalised)
{
    email_ok("budi@gmail.com", "budi@gmail.com");
    email_ok("Budi.Santoso@Gmail.COM", "Budi.Santoso@gmail.com"); /* local part kept */
    email_ok("  budi+wave3@kemnaker.go.id \n", "budi+wave3@kemnaker.go.id");
    email_ok("a!#$%&'*+-/=?^_`{|}~z@example.com", "a!#$%&'*+-/=?^_`{|}~z@example.com");
    email_ok("x@a-b.c-d.example.org", "x@a-b.c-d.example.org");
    email_ok("budi@contoh.xn--p1ai", "budi@contoh.xn--p1ai");
    email_ok("budi@ugm.ac.id", "budi@ugm.ac.id");
}

Test(validate, email_lengths)
{
    struct validate_error e;
    char local[80], addr[300];
    memset(local, 'a', 64);
    local[64] = '\0';
    snprintf(addr, sizeof addr, "%s@example.com", local);
    email_ok(addr, addr);
    memset(local, 'a', 65);
    local[65] = '\0';
    snprintf(addr, sizeof addr, "%s@example.com", local);
    email_bad(addr, "email_too_long", &e);
    has(e.msg_id, "64 karakter");
    has(e.msg_en, "yours has 65");
    /* 254 in all is the limit: a@ + labels of 63 + ".com". */
    char dom[260];
    memset(dom, 0, sizeof dom);
    for (int i = 0; i < 3; i++) {
        memset(dom + strlen(dom), 'd', 63);
        strcat(dom, ".");
    }
    /* dom is 192 bytes; a local of 64 and "@" make 257 with "com": trim the local to fit. */
    snprintf(addr, sizeof addr, "%.*s@%scom", 254 - 1 - 192 - 3, local, dom);
    cr_assert_eq(strlen(addr), 254);
    email_ok(addr, addr);
    snprintf(addr, sizeof addr, "%.*s@%scom", 254 - 192 - 3, local, dom);
    cr_assert_eq(strlen(addr), 255);
    email_bad(addr, "email_too_long", &e);
    has(e.msg_id, "255 karakter, paling banyak 254");
    has(e.msg_en, "255 characters, at most 254");
    /* Label of 64. */
    memset(dom, 'd', 64);
    dom[64] = '\0';
    snprintf(addr, sizeof addr, "budi@%s.com", dom);
    email_bad(addr, "invalid_email", &e);
    has(e.msg_id, "63 karakter");
    dom[63] = '\0';
    snprintf(addr, sizeof addr, "budi@%s.com", dom);
    email_ok(addr, addr);
}

Test(validate, email_syntax_refusals)
{
    struct validate_error e;
    email_bad(NULL, "required", &e);
    email_bad("", "required", &e);
    email_bad("  ", "required", &e);
    email_bad("budi.gmail.com", "invalid_email", &e);
    has(e.msg_id, "harus memuat tanda @");
    has(e.msg_en, "must contain an @");
    email_bad("budi@@gmail.com", "invalid_email", &e);
    has(e.msg_id, "hanya boleh memuat satu tanda @");
    has(e.msg_en, "yours has 2");
    email_bad("budi@kantor@gmail.com", "invalid_email", &e);
    email_bad("@gmail.com", "invalid_email", &e);
    has(e.msg_id, "Bagian sebelum @ kosong");
    email_bad("budi@", "invalid_email", &e);
    has(e.msg_id, "Bagian setelah @ kosong");
    email_bad("budi santoso@gmail.com", "invalid_email", &e);
    has(e.msg_id, "tidak boleh berisi spasi (karakter ke-5)");
    has(e.msg_en, "cannot contain spaces (character 5)");
    email_bad("budi@gmail.com\tx", "invalid_email", &e);
    email_bad("bu\x01"
              "di@gmail.com",
              "invalid_email", &e);
    has(e.msg_en, "control characters");
    email_bad("bu\xc3\xa9"
              "di@gmail.com",
              "invalid_email", &e);
    has(e.msg_id, "karakter ke-3");
    has(e.msg_en, "character 3");
    email_bad("budi<x>@gmail.com", "invalid_email", &e);
    has(e.msg_id, "\"<\"");
    email_bad("\"budi\"@gmail.com", "invalid_email", &e);
    has(e.msg_id, "tanda petik");
    email_bad("budi,santoso@gmail.com", "invalid_email", &e);
    email_bad(".budi@gmail.com", "invalid_email", &e);
    has(e.msg_id, "Titik");
    email_bad("budi.@gmail.com", "invalid_email", &e);
    email_bad("bu..di@gmail.com", "invalid_email", &e);
    email_bad("budi@contoh_domain.com", "invalid_email", &e);
    has(e.msg_id, "\"_\"");
    email_bad("budi@kantor", "invalid_email", &e);
    has(e.msg_id, "dengan titik");
    cr_assert_str_eq(e.suggestion, "");
    email_bad("budi@.example.com", "invalid_email", &e);
    email_bad("budi@example..com", "invalid_email", &e);
    has(e.msg_en, "two dots in a row");
    email_bad("budi@example.com.", "invalid_email", &e);
    email_bad("budi@-example.com", "invalid_email", &e);
    has(e.msg_id, "tanda hubung");
    email_bad("budi@example-.com", "invalid_email", &e);
    email_bad("budi@example.c", "invalid_email", &e);
    has(e.msg_id, "\".c\"");
    email_bad("budi@example.123", "invalid_email", &e);
    email_bad("budi@example.c0m", "invalid_email", &e);
    email_bad("budi@example.xn--", "invalid_email", &e);
    email_bad("budi@[127.0.0.1]", "invalid_email", &e);
}

Test(validate, email_typo_suggestions)
{
    email_typo("budi@gmial.com", "gmail.com");
    email_typo("budi@gmai.com", "gmail.com");
    email_typo("budi@gmail.co", "gmail.com");
    email_typo("budi@gmaill.com", "gmail.com");
    email_typo("budi@gamil.com", "gmail.com");
    email_typo("budi@gmail.con", "gmail.com");
    email_typo("budi@GMIAL.COM", "gmail.com");
    email_typo("budi@yaho.co.id", "yahoo.co.id");
    email_typo("budi@yahoo.co.di", "yahoo.co.id");
    email_typo("budi@yahoo.coid", "yahoo.co.id");
    email_typo("budi@yahooo.com", "yahoo.com");
    email_typo("budi@yahoo.co", "yahoo.com");
    email_typo("budi@hotmial.com", "hotmail.com");
    email_typo("budi@outlok.com", "outlook.com");
    email_typo("budi@ymial.com", "ymail.com");
    email_typo("budi@iclod.com", "icloud.com");
    struct validate_error e;
    email_bad("budi@gmial.com", "email_typo", &e);
    has(e.msg_id, "\"gmial.com\"");
    has(e.msg_id, "maksud Anda \"gmail.com\"?");
    has(e.msg_en, "did you mean \"gmail.com\"?");
}

Test(validate, email_no_suggestion_when_exact_or_unrelated)
{
    static const char *ok[] = {"gmail.com",      "yahoo.co.id", "yahoo.com",   "hotmail.com",
                               "outlook.com",    "ymail.com",   "icloud.com",  "mail.com",
                               "email.com",      "yahoo.co.uk", "yahoo.co.jp", "live.com",
                               "kemnaker.go.id", "ugm.ac.id",   "example.org", "telkom.net",
                               "contoh.co.id",   "gmx.com"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "budi@%s", ok[i]);
        email_ok(addr, addr);
    }
}

Test(validate, email_typo_confirmed)
{
    struct validate_error e;
    char out[VALIDATE_EMAIL_MAX];
    accepted(validate_email("Budi@GMIAL.com", 1, out, sizeof out, &e), &e);
    cr_assert_str_eq(out, "Budi@gmial.com");
    /* Confirmation does not excuse bad syntax. */
    refused(validate_email("budi@gmial", 1, out, sizeof out, &e), &e, "email", "invalid_email");
}

Test(validate, email_syntax_errors_may_suggest)
{
    struct validate_error e;
    email_bad("budi@gmail,com", "invalid_email", &e);
    cr_assert_str_eq(e.suggestion, "gmail.com");
    email_bad("budi@gmail", "invalid_email", &e);
    cr_assert_str_eq(e.suggestion, "gmail.com");
    email_bad("budi@yahoo", "invalid_email", &e);
    cr_assert_str_eq(e.suggestion, "yahoo.co.id");
    email_bad("budi@gmail.com.", "invalid_email", &e);
    cr_assert_str_eq(e.suggestion, "gmail.com");
}

Test(validate, email_output_buffer_too_small)
{
    struct validate_error e;
    char out[14];
    refused(validate_email("budi@gmail.com", 0, out, sizeof out, &e), &e, "email",
            "internal_error");
    char out2[15];
    accepted(validate_email("budi@gmail.com", 0, out2, sizeof out2, &e), &e);
    cr_assert_str_eq(out2, "budi@gmail.com");
}

/* ---- phone ------------------------------------------------------------------------------- */

static void phone_ok(const char *in, const char *want)
{
    struct validate_error e;
    char out[VALIDATE_PHONE_MAX];
    accepted(validate_phone(in, out, sizeof out, &e), &e);
    cr_assert_str_eq(out, want, "phone %s normalised to %s, expected %s", in, out, want);
}

static void phone_bad(const char *in, const char *code, struct validate_error *e)
{
    char out[VALIDATE_PHONE_MAX];
    strcpy(out, "junk");
    refused(validate_phone(in, out, sizeof out, e), e, "phone", code);
    cr_assert_str_eq(out, "");
}

Test(validate, phone_forms)
{
    static const char *forms[] = {
        "08123456789",       "8123456789",         "+628123456789",     "628123456789",
        "0812-3456-789",     "0812 3456 789",      "0812.3456.789",     "(0812) 3456-789",
        "+62 812 3456 789",  "+62 (812) 3456-789", "+62 0812 3456 789", "620812 3456789",
        "0062 812 3456 789", " 08123456789 ",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) phone_ok(forms[i], "+628123456789");
}

Test(validate, phone_length_10_to_13_from_the_zero)
{
    struct validate_error e;
    phone_ok("0812345678", "+62812345678");           /* 10 */
    phone_ok("0812345678901", "+62812345678901");     /* 13 */
    phone_ok("+62812345678901", "+62812345678901");   /* 13 */
    phone_bad("081234567", "phone_wrong_length", &e); /* 9 */
    has(e.msg_id, "10–13 digit");
    has(e.msg_id, "081234567890");
    has(e.msg_id, "nomor Anda 9 digit");
    has(e.msg_en, "yours has 9");
    phone_bad("08123456789012", "phone_wrong_length", &e); /* 14 */
    has(e.msg_id, "nomor Anda 14 digit");
    phone_bad("+62812345678901234567890123", "phone_wrong_length", &e);
    phone_bad("0", "phone_wrong_length", &e);
    phone_bad("+62", "phone_wrong_length", &e);
}

Test(validate, phone_must_be_indonesian_mobile)
{
    struct validate_error e;
    phone_bad("0215551234", "phone_not_mobile", &e);
    has(e.msg_id, "Nomor 0215551234 bukan nomor HP");
    has(e.msg_id, "bukan nomor HP");
    has(e.msg_id, "diawali 08");
    has(e.msg_en, "not a mobile number");
    phone_bad("+62 21 555 1234", "phone_not_mobile", &e);
    has(e.msg_en, "The number 0215551234 is not");
    phone_bad("62215551234", "phone_not_mobile", &e);
    phone_bad("1234567890", "phone_not_mobile", &e);
    phone_bad("+6591234567", "phone_not_indonesian", &e);
    has(e.msg_id, "+65");
    has(e.msg_id, "Hanya nomor HP Indonesia");
    has(e.msg_en, "Only Indonesian");
    phone_bad("+1 415 555 0100", "phone_not_indonesian", &e);
}

Test(validate, phone_characters)
{
    struct validate_error e;
    phone_bad(NULL, "required", &e);
    phone_bad("", "required", &e);
    phone_bad(" ", "required", &e);
    phone_bad("0812abc4567", "invalid_phone", &e);
    has(e.msg_id, "karakter ke-5 adalah \"a\"");
    has(e.msg_en, "character 5 is \"a\"");
    phone_bad("0812+3456789", "invalid_phone", &e);
    phone_bad("++628123456789", "invalid_phone", &e);
    phone_bad("0812/3456789", "invalid_phone", &e);
    phone_bad("0812\n3456789", "invalid_phone", &e);
    phone_bad("--- ()", "invalid_phone", &e);
    has(e.msg_id, "tidak berisi angka");
    phone_bad("+", "invalid_phone", &e);
}

Test(validate, phone_output_buffer_too_small)
{
    struct validate_error e;
    char out[14];
    refused(validate_phone("081234567890", out, sizeof out, &e), &e, "phone", "internal_error");
    accepted(validate_phone("08123456789", out, sizeof out, &e), &e); /* 13 + NUL */
    cr_assert_str_eq(out, "+628123456789");
}

/* ---- name -------------------------------------------------------------------------------- */

static void name_ok(const char *in, const char *want)
{
    struct validate_error e;
    char out[VALIDATE_NAME_MAX];
    accepted(validate_name(in, out, sizeof out, &e), &e);
    cr_assert_str_eq(out, want, "name \"%s\" normalised to \"%s\", expected \"%s\"", in, out, want);
}

static void name_bad(const char *in, const char *code, struct validate_error *e)
{
    char out[VALIDATE_NAME_MAX];
    strcpy(out, "junk");
    refused(validate_name(in, out, sizeof out, e), e, "name", code);
    cr_assert_str_eq(out, "");
}

Test(validate, name_valid_and_normalised)
{
    name_ok("Budi Santoso", "Budi Santoso");
    name_ok("  Siti   Nurhaliza  ", "Siti Nurhaliza");
    name_ok("Siti\xc2\xa0\xc2\xa0Nurhaliza\xc2\xa0", "Siti Nurhaliza"); /* no-break spaces */
    name_ok("I Gusti Ngurah Rai", "I Gusti Ngurah Rai");
    name_ok("O'Brien-Smith, Jr.", "O'Brien-Smith, Jr.");
    name_ok("Al", "Al");
    name_ok("Soekarno", "Soekarno");
    /* Letters of any script. */
    name_ok("Ñoño Pérez", "Ñoño Pérez");
    name_ok("张伟", "张伟");
    name_ok("Дмитрий Иванов", "Дмитрий Иванов");
    name_ok("محمد عبد الله", "محمد عبد الله");
    name_ok("ꦧꦸꦢꦶ", "ꦧꦸꦢꦶ");                                         /* Javanese script */
    name_ok("Ma\xe2\x80\x99ruf Amin", "Ma\xe2\x80\x99ruf Amin"); /* typographic apostrophe */
    name_ok("\xf0\x9d\x90\x80\xf0\x9d\x90\x81", "\xf0\x9d\x90\x80\xf0\x9d\x90\x81"); /* 4 bytes */
}

Test(validate, name_digits_refused)
{
    struct validate_error e;
    name_bad("R2D2", "name_invalid_character", &e);
    has(e.msg_id, "tidak boleh berisi angka");
    has(e.msg_id, "karakter ke-2 adalah \"2\"");
    has(e.msg_en, "character 2 is \"2\"");
    name_bad("Budi Santoso 3", "name_invalid_character", &e);
    name_bad("Budi\xef\xbc\x91", "name_invalid_character", &e); /* fullwidth 1 */
    has(e.msg_id, "karakter ke-5 adalah angka");
    name_bad("\xd9\xa1\xd9\xa2", "name_invalid_character", &e); /* Arabic-Indic digits */
}

Test(validate, name_control_and_invisible_characters_refused)
{
    struct validate_error e;
    name_bad("Budi\x01Santoso", "name_invalid_character", &e);
    has(e.msg_id, "karakter kontrol");
    has(e.msg_id, "karakter ke-5");
    has(e.msg_en, "control characters");
    name_bad("Budi\tSantoso", "name_invalid_character", &e);
    name_bad("Budi\nSantoso", "name_invalid_character", &e);
    name_bad("Budi Santoso\r", "name_invalid_character", &e);
    name_bad("Budi\x7f", "name_invalid_character", &e);
    name_bad("Budi\xc2\x85", "name_invalid_character", &e); /* C1 NEL */
    has(e.msg_id, "karakter kontrol");
    name_bad("Bu\xe2\x80\x8b"
             "di",
             "name_invalid_character", &e); /* zero-width space */
    has(e.msg_id, "tak terlihat");
    has(e.msg_id, "karakter ke-3");
    has(e.msg_en, "invisible");
    name_bad("Budi\xe2\x80\xae"
             "otnasS",
             "name_invalid_character", &e); /* RTL override */
    name_bad("\xef\xbb\xbf"
             "Budi",
             "name_invalid_character", &e);                            /* BOM */
    name_bad("Budi\xe2\x80\xa8Santoso", "name_invalid_character", &e); /* line separator */
}

Test(validate, name_symbols_refused)
{
    struct validate_error e;
    static const char *bad[] = {"Budi@Santoso", "Budi_Santoso", "Budi (Santoso)",
                                "Budi/Santo",   "Budi!",        "<script>",
                                "Budi;",        "Budi\"",       "Budi\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        name_bad(bad[i], "name_invalid_character", &e);
    name_bad("Budi@Santoso", "name_invalid_character", &e);
    has(e.msg_id, "Karakter ke-5 (\"@\") tidak boleh dipakai dalam nama");
    has(e.msg_id, "apostrof (')");
    has(e.msg_en, "Character 5 (\"@\") is not allowed");
}

Test(validate, name_invalid_utf8_refused)
{
    struct validate_error e;
    static const char *bad[] = {
        "Bu\xc3\x28"
        "di",
        "\xc0\xaf"
        "Budi",
        "Budi\xed\xa0\x80",
        "Bud\xe2\x82",
        "Budi\xff",
        "Budi\xf4\x90\x80\x80",
        "\x80"
        "Budi",
        "Budi\xe0\x80\xaf",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        name_bad(bad[i], "name_invalid_utf8", &e);
    name_bad("Bu\xc3\x28"
             "di",
             "name_invalid_utf8", &e);
    has(e.msg_id, "byte ke-3");
    has(e.msg_en, "byte 3");
}

Test(validate, name_lengths)
{
    struct validate_error e;
    name_bad(NULL, "required", &e);
    name_bad("", "required", &e);
    name_bad("   ", "required", &e);
    name_bad("\xc2\xa0", "required", &e);
    name_bad("A", "name_too_short", &e);
    has(e.msg_id, "paling sedikit 2");
    name_bad("  A  ", "name_too_short", &e);
    name_bad("é", "name_too_short", &e);
    name_bad("--", "name_no_letters", &e);
    has(e.msg_id, "harus memuat huruf");
    name_bad(". , '", "name_no_letters", &e);

    /* 100 code points (200 bytes of é) pass; 101 do not. Collapsed spaces do not count. */
    char buf[1024];
    buf[0] = '\0';
    for (int i = 0; i < 100; i++) strcat(buf, "é");
    char out[VALIDATE_NAME_MAX];
    accepted(validate_name(buf, out, sizeof out, &e), &e);
    cr_assert_str_eq(out, buf);
    strcat(buf, "é");
    name_bad(buf, "name_too_long", &e);
    has(e.msg_id, "101 karakter, paling banyak 100");
    has(e.msg_en, "101 characters, at most 100");
    /* 100 four-byte letters: the documented buffer suffices. */
    buf[0] = '\0';
    for (int i = 0; i < 100; i++) strcat(buf, "\xf0\x9d\x90\x80");
    accepted(validate_name(buf, out, sizeof out, &e), &e);
    /* 50 letters with runs of 5 spaces between them: 99 after collapsing the runs. */
    char *p = buf;
    for (int i = 0; i < 50; i++) p += sprintf(p, "a     ");
    p[-5] = '\0';
    accepted(validate_name(buf, out, sizeof out, &e), &e);
    cr_assert_eq(strlen(out), 50 + 49);
}

Test(validate, name_output_buffer)
{
    struct validate_error e;
    char out[8];
    refused(validate_name("Budi Santoso", out, sizeof out, &e), &e, "name", "internal_error");
    /* strlen(name) + 1 always suffices. */
    const char *in = "  Budi   Santoso ";
    char exact[18];
    cr_assert_eq(strlen(in) + 1, sizeof exact);
    accepted(validate_name(in, exact, sizeof exact, &e), &e);
    char tight[13];
    accepted(validate_name(in, tight, sizeof tight, &e), &e);
    cr_assert_str_eq(tight, "Budi Santoso");
}

/* ---- every message ---------------------------------------------------------------------- */

/* A success after a refusal leaves nothing of the refusal behind. */
Test(validate, success_clears_the_error)
{
    struct validate_error e;
    refused(validate_nik("x", &e), &e, "nik", "nik_not_numeric");
    accepted(validate_nik("3201011305900001", &e), &e);
    char out[VALIDATE_EMAIL_MAX];
    refused(validate_email("budi@gmial.com", 0, out, sizeof out, &e), &e, "email", "email_typo");
    accepted(validate_email("budi@gmail.com", 0, out, sizeof out, &e), &e);
}
