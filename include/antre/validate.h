/* validate.h: checks on the fields of a registration (POST /v1/registrations), with messages that
 * tell the applicant exactly what to fix, in Indonesian and in English.
 *
 * The functions are pure: no I/O, no allocation, no global state, so any thread may call them.
 * Each returns 0 when the value is acceptable, or -1 with *E filled:
 *   e->field       the JSON field refused ("nik", "kk", "birth_date", "email", "phone", "name");
 *                  a static string
 *   e->code        a stable snake_case code (the list below); a static string
 *   e->msg_id      what is wrong and how to fix it, in Indonesian (valid UTF-8, NUL-terminated)
 *   e->msg_en      the same in English
 *   e->suggestion  a corrected value to offer ("gmail.com"), or "" when there is none
 * On success *E is cleared (field and code NULL, strings empty). Messages quote the applicant's
 * input only when it is short printable ASCII; they are always shorter than their buffers.
 *
 * Codes (field: codes):
 *   every field:  required                 (NULL, or empty after trimming spaces)
 *   nik:          nik_not_numeric, nik_wrong_length, nik_unknown_province, nik_zero_region,
 *                 nik_invalid_date
 *   kk:           kk_not_numeric, kk_wrong_length, kk_unknown_province
 *   birth_date:   invalid_date (not YYYY-MM-DD, not a real date, or in the future), too_young,
 *                 too_old, nik_birth_date_mismatch
 *   email:        invalid_email, email_too_long, email_typo
 *   phone:        invalid_phone, phone_not_indonesian, phone_not_mobile, phone_wrong_length
 *   name:         name_invalid_utf8, name_invalid_character, name_no_letters, name_too_short,
 *                 name_too_long
 *   any:          internal_error (an output buffer smaller than documented; a caller's bug)
 * DESIGN.md's generic 422 code is invalid_field; these codes are the precise reason behind it. */
#ifndef ANTRE_VALIDATE_H
#define ANTRE_VALIDATE_H

#include <stddef.h>

struct validate_error {
    const char *field;
    const char *code;
    char msg_id[256];
    char msg_en[256];
    char suggestion[128];
};

/* Working-age bounds, inclusive, in completed years (from config, e.g. 18 and 64). */
struct validate_limits {
    int min_age_years, max_age_years;
};

/* Output buffer sizes that always suffice (with the terminating NUL). */
#define VALIDATE_EMAIL_MAX 255 /* RFC 5321: an address is at most 254 octets */
#define VALIDATE_PHONE_MAX 16  /* "+62" and at most 12 digits */
#define VALIDATE_NAME_MAX 401  /* 100 code points of at most 4 bytes */

/* The sex a NIK implies: its day digits carry 40 added for women. */
enum validate_sex { VALIDATE_SEX_UNKNOWN = 0, VALIDATE_SEX_MALE, VALIDATE_SEX_FEMALE };

/* Whether CODE (0-99) is one of the province codes a NIK or KK may start with: 11-19, 21, 31-36,
 * 51-53, 61-65, 71-76, 81-82, 91-96. Returns 1 or 0. */
int validate_is_province(int code);

/* Check NIK (Nomor Induk Kependudukan): exactly 16 ASCII digits, nothing else (no spaces); the
 * layout PP KK CC DDMMYY SSSS: PP a province code, KK (regency/city) and CC (district) not 00,
 * DDMMYY a possible date (day 01-31, or 41-71 for women; month 01-12; the day within the month,
 * 29 February allowed when YY is a multiple of 4). */
int validate_nik(const char *nik, struct validate_error *e);

/* Check KK (Nomor Kartu Keluarga): exactly 16 ASCII digits beginning with a province code. */
int validate_kk(const char *kk, struct validate_error *e);

/* Check ISO, a birth date written YYYY-MM-DD (exactly; year 0001-9999): a real date (Gregorian
 * leap years: 2000-02-29 exists, 1900-02-29 does not), not after today (TODAY_Y, TODAY_M,
 * TODAY_D, passed in so the answer is deterministic), and an age in completed years within L
 * (NULL: no age check). An age counts up on the birthday; someone born on 29 February turns a
 * year older on 1 March in common years. On success stores the date in *Y, *M, *D (each may
 * be NULL). Codes: required, invalid_date, too_young, too_old. A date refused for its format that
 * reads as a real DD-MM-YYYY date (also with / or .) gets its YYYY-MM-DD form in e->suggestion. */
int validate_birth_date(const char *iso, int today_y, int today_m, int today_d,
                        const struct validate_limits *l, int *y, int *m, int *d,
                        struct validate_error *e);

/* Check that NIK's date digits (DDMMYY, day + 40 for women) agree with the birth date Y-M-D
 * (the output of validate_birth_date). When they do not, refuses with nik_birth_date_mismatch on
 * field birth_date, naming the digits that disagree, unless CONFIRM_MISMATCH is nonzero (the
 * applicant sent "confirm_mismatch": true because the civil registry corrected the date and kept
 * the NIK), in which case the mismatch is accepted. A NIK that fails validate_nik() is refused
 * with validate_nik()'s error whatever CONFIRM_MISMATCH says. */
int validate_nik_matches_birth_date(const char *nik, int y, int m, int d, int confirm_mismatch,
                                    struct validate_error *e);

/* The sex NIK implies (day digits 41-71: female; 01-31: male), or VALIDATE_SEX_UNKNOWN when
 * NIK is not a valid NIK. */
enum validate_sex validate_nik_sex(const char *nik);

/* Check EMAIL and write its normal form to NORMALISED (LEN bytes; VALIDATE_EMAIL_MAX always
 * suffices, else internal_error): surrounding spaces removed, the domain lowercased, the local
 * part kept as sent. Syntax (RFC 5321 dot-atom; quoted local parts and address literals are not
 * accepted): one @; a local part of 1-64 characters from letters, digits and
 * ! # $ % & ' * + - / = ? ^ _ ` { | } ~ with dots only between them; at most 254 characters in
 * all; a domain of at least two labels, each 1-63 letters, digits or hyphens not at either end,
 * the last one (the TLD) letters only or an "xn--" label. ASCII only.
 *
 * A typo in a common provider's domain (within 2 edits, a swap of two neighbouring letters
 * counting as one, of gmail.com, yahoo.co.id, yahoo.com, hotmail.com, outlook.com, ymail.com,
 * icloud.com, ...: "gmial.com", "yaho.co.id", "gmail.co") is refused with email_typo and
 * e->suggestion set to the provider's domain ("gmail.com"), unless CONFIRM is nonzero (the
 * applicant sent "confirm_email": true: the address is right as typed). A domain that is itself
 * well known is never a typo, nor is one far from every provider. A domain refused as
 * invalid_email may also carry a suggestion ("gmail,com" and "gmail" suggest "gmail.com").
 * Codes: required, invalid_email, email_too_long, email_typo. NORMALISED is "" on refusal. */
int validate_email(const char *email, int confirm, char *normalised, size_t len,
                   struct validate_error *e);

/* Check PHONE, an Indonesian mobile number, and write it as +62 and its digits to OUT (LEN
 * bytes; VALIDATE_PHONE_MAX always suffices, else internal_error). Spaces, dashes, dots and
 * parentheses are ignored. Accepted forms: 08123456789, 8123456789, +628123456789,
 * 628123456789, and +62 0812... (the 0 after the country code is dropped). The number must be a
 * mobile one (8 right after 0 or 62) and have 10-13 digits when written from the leading 0
 * (08 and 8-11 more digits). Codes: required, invalid_phone (characters), phone_not_indonesian
 * (another country code), phone_not_mobile (a landline such as 021...), phone_wrong_length.
 * OUT is "" on refusal. */
int validate_phone(const char *phone, char *out, size_t len, struct validate_error *e);

/* Check NAME, a person's full name, and write its normal form to OUT (LEN bytes;
 * VALIDATE_NAME_MAX always suffices, as does strlen(NAME) + 1; else internal_error): valid
 * UTF-8; spaces (and U+00A0 no-break spaces) trimmed at both ends and each inner run collapsed
 * to one space; then 2-100 code points. Allowed: ASCII letters, any non-ASCII character (every
 * script's letters, accents, the typographic apostrophe), space, apostrophe, hyphen, period and
 * comma. Refused: digits (ASCII, fullwidth, Arabic-Indic), other ASCII symbols, control
 * characters (tab and newline included; C1 controls too), invisible formatting characters
 * (zero-width spaces and joiners, bidirectional overrides, BOM, line separators), and a name
 * without a single letter. Codes: required, name_invalid_utf8, name_invalid_character,
 * name_no_letters, name_too_short, name_too_long. OUT is "" on refusal. */
int validate_name(const char *name, char *out, size_t len, struct validate_error *e);

/* The number of distinct codes the functions above may set (every one answered as 422 with its
 * field), for documentation and its test. */
size_t validate_code_count(void);

/* Code I (0 <= I < validate_code_count()), or NULL past the end; a static string. */
const char *validate_code_at(size_t i);

#endif
