/* validate.c: checks on a registration's fields (NIK, KK, birth date, email, phone, name), each
 * refusal with a stable code and a message in Indonesian and English that says what to fix.
 * See include/antre/validate.h for the rules and the codes.
 *
 * Everything here works on the caller's strings and buffers: no allocation, no I/O, no static
 * mutable state, so the gateway's threads may call it freely. Messages are formatted with
 * snprintf into the fixed buffers of struct validate_error; say() cuts a message that would not
 * fit back to a whole UTF-8 character, so the JSON encoder never sees a broken sequence (the
 * tests check that no message comes near the limit). Applicant input is quoted in a message only
 * when it is short printable ASCII (echo()), so a message is always valid UTF-8 and bounded. */
#include "antre/validate.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NIK_LEN 16
#define EMAIL_LOCAL_MAX 64
#define EMAIL_TOTAL_MAX 254
#define EMAIL_LABEL_MAX 63
#define NAME_MIN 2
#define NAME_MAX_CP 100
#define ECHO_MAX 24 /* longest input quoted back in a message */

/* ---- messages ---------------------------------------------------------------------------- */

static void clear(struct validate_error *e)
{
    e->field = NULL;
    e->code = NULL;
    e->msg_id[0] = '\0';
    e->msg_en[0] = '\0';
    e->suggestion[0] = '\0';
}

/* Format into BUF (SIZE bytes). A message too long for BUF is cut before the last whole UTF-8
 * character that fits. */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return;
    }
    if ((size_t)n < size) return;
    size_t len = size - 1, i = len;
    while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) {
        unsigned char c = (unsigned char)buf[i - 1];
        size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (len - (i - 1) < need) buf[i - 1] = '\0';
    }
}

#define SAY_ID(e, ...) say((e)->msg_id, sizeof(e)->msg_id, __VA_ARGS__)
#define SAY_EN(e, ...) say((e)->msg_en, sizeof(e)->msg_en, __VA_ARGS__)

/* Every code set below (the list in validate.h), for validate_code_at. */
static const char *const codes[] = {
    "required",
    "nik_not_numeric",
    "nik_wrong_length",
    "nik_unknown_province",
    "nik_zero_region",
    "nik_invalid_date",
    "kk_not_numeric",
    "kk_wrong_length",
    "kk_unknown_province",
    "invalid_date",
    "too_young",
    "too_old",
    "nik_birth_date_mismatch",
    "invalid_email",
    "email_too_long",
    "email_typo",
    "invalid_phone",
    "phone_not_indonesian",
    "phone_not_mobile",
    "phone_wrong_length",
    "name_invalid_utf8",
    "name_invalid_character",
    "name_no_letters",
    "name_too_short",
    "name_too_long",
    "internal_error",
};

size_t validate_code_count(void) { return sizeof codes / sizeof codes[0]; }

const char *validate_code_at(size_t i) { return i < validate_code_count() ? codes[i] : NULL; }

static int fail(struct validate_error *e, const char *field, const char *code)
{
    e->field = field;
    e->code = code;
    return -1;
}

/* Copy S into BUF (ECHO_MAX + 4 bytes) when it is short printable ASCII without a double quote,
 * so it can be quoted back; returns 0 when it cannot be quoted. */
static int echo(const char *s, char buf[ECHO_MAX + 4])
{
    size_t n = strlen(s);
    if (n == 0 || n > ECHO_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\') return 0;
    memcpy(buf, s, n + 1);
    return 1;
}

/* How to name the character C (the first byte of it) in a message. */
static void char_name(unsigned char c, char id[32], char en[32])
{
    if (c == ' ') {
        snprintf(id, 32, "spasi");
        snprintf(en, 32, "a space");
    } else if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
        snprintf(id, 32, "\"%c\"", c);
        snprintf(en, 32, "\"%c\"", c);
    } else if (c == '"') {
        snprintf(id, 32, "tanda petik (\")");
        snprintf(en, 32, "a double quote (\")");
    } else if (c == '\\') {
        snprintf(id, 32, "garis miring terbalik (\\)");
        snprintf(en, 32, "a backslash (\\)");
    } else if (c < 0x80) {
        snprintf(id, 32, "karakter kontrol");
        snprintf(en, 32, "a control character");
    } else {
        snprintf(id, 32, "karakter non-ASCII");
        snprintf(en, 32, "a non-ASCII character");
    }
}

/* The 1-based position, counted in characters (UTF-8 lead bytes), of byte P within S. */
static int char_pos(const char *s, const char *p)
{
    int n = 1;
    for (const char *q = s; q < p; q++)
        if (((unsigned char)*q & 0xC0) != 0x80) n++;
    return n;
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return 0;
    return 1;
}

static int required(struct validate_error *e, const char *field)
{
    static const struct {
        const char *field, *id, *en;
    } t[] = {
        {"nik", "NIK wajib diisi: masukkan 16 digit NIK yang tertera di KTP Anda.",
         "The NIK is required: enter the 16-digit NIK printed on your KTP (ID card)."},
        {"kk", "Nomor KK wajib diisi: masukkan 16 digit nomor yang tertera di Kartu Keluarga Anda.",
         "The KK number is required: enter the 16-digit number printed on your family card "
         "(Kartu Keluarga)."},
        {"birth_date", "Tanggal lahir wajib diisi, dengan format TTTT-BB-HH, misalnya 1990-05-13.",
         "The birth date is required, written YYYY-MM-DD, for example 1990-05-13."},
        {"email", "Alamat email wajib diisi, misalnya nama@gmail.com.",
         "The email address is required, for example name@gmail.com."},
        {"phone", "Nomor HP wajib diisi, misalnya 081234567890.",
         "The mobile phone number is required, for example 081234567890."},
        {"name", "Nama wajib diisi: tulis nama lengkap Anda sesuai KTP.",
         "The name is required: write your full name as on your KTP (ID card)."},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].field, field) == 0) {
            SAY_ID(e, "%s", t[i].id);
            SAY_EN(e, "%s", t[i].en);
            return fail(e, t[i].field, "required");
        }
    return fail(e, field, "required"); /* not reached: every field is in the table */
}

static int internal(struct validate_error *e, const char *field)
{
    SAY_ID(e, "Terjadi kesalahan di server saat memeriksa data ini; coba lagi nanti.");
    SAY_EN(e, "The server failed while checking this value; try again later.");
    return fail(e, field, "internal_error");
}

/* ---- dates ------------------------------------------------------------------------------- */

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Completed years between birth date Y-M-D and today TY-TM-TD (birthday counts). */
static int age_on(int y, int m, int d, int ty, int tm, int td)
{
    int age = ty - y;
    if (tm < m || (tm == m && td < d)) age--;
    return age;
}

static int two_digits(const char *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

/* ---- NIK and KK -------------------------------------------------------------------------- */

int validate_is_province(int code)
{
    return (code >= 11 && code <= 19) || code == 21 || (code >= 31 && code <= 36) ||
           (code >= 51 && code <= 53) || (code >= 61 && code <= 65) || (code >= 71 && code <= 76) ||
           (code >= 81 && code <= 82) || (code >= 91 && code <= 96);
}

/* How NIK and KK differ in the checks they share. */
struct id_number {
    const char *field;
    const char *id, *id_mid, *en, *en_mid; /* its name at the start and within a sentence */
    const char *where_id, *where_en;       /* where the applicant finds it */
    const char *code_numeric, *code_len, *code_prov;
};

static const struct id_number NIK = {
    "nik",
    "NIK",
    "NIK",
    "The NIK",
    "the NIK",
    "NIK di KTP Anda",
    "the NIK on your KTP (ID card)",
    "nik_not_numeric",
    "nik_wrong_length",
    "nik_unknown_province",
};

static const struct id_number KK = {
    "kk",
    "Nomor KK",
    "nomor KK",
    "The KK number",
    "the KK number",
    "nomor di Kartu Keluarga Anda",
    "the number on your family card (Kartu Keluarga)",
    "kk_not_numeric",
    "kk_wrong_length",
    "kk_unknown_province",
};

/* The shared part of NIK and KK: 16 ASCII digits, a province code first. */
static int check_16_digits(const char *s, const struct id_number *k, struct validate_error *e)
{
    if (s == NULL || is_blank(s)) return required(e, k->field);
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9') continue;
        char cid[32], cen[32];
        char_name((unsigned char)*p, cid, cen);
        int pos = char_pos(s, p);
        SAY_ID(e,
               "%s hanya boleh berisi angka 0–9, tanpa spasi atau tanda baca; karakter ke-%d "
               "adalah %s.",
               k->id, pos, cid);
        SAY_EN(e,
               "%s may contain only the digits 0–9, with no spaces or punctuation; character %d "
               "is %s.",
               k->en, pos, cen);
        return fail(e, k->field, k->code_numeric);
    }
    size_t n = strlen(s);
    if (n != NIK_LEN) {
        SAY_ID(e, "%s harus 16 digit angka; yang Anda kirim %zu digit. Periksa kembali %s.", k->id,
               n, k->where_id);
        SAY_EN(e, "%s must be 16 digits; you sent %zu. Check %s.", k->en, n, k->where_en);
        return fail(e, k->field, k->code_len);
    }
    int prov = two_digits(s);
    if (!validate_is_province(prov)) {
        SAY_ID(e,
               "Dua digit pertama %s (%02d) bukan kode provinsi yang berlaku. Periksa kembali "
               "%s.",
               k->id_mid, prov, k->where_id);
        SAY_EN(e, "The first two digits of %s (%02d) are not a province code. Check %s.", k->en_mid,
               prov, k->where_en);
        return fail(e, k->field, k->code_prov);
    }
    return 0;
}

/* Fill *DD (1-31, 40 removed), *MM, *YY and *FEMALE from a NIK already known to be 16 digits;
 * returns -1 with E filled when the date digits are not a possible date. */
static int nik_date(const char *nik, int *dd, int *mm, int *yy, int *female,
                    struct validate_error *e)
{
    int raw = two_digits(nik + 6), m = two_digits(nik + 8), y = two_digits(nik + 10);
    int d = raw > 40 ? raw - 40 : raw;
    if (raw == 0 || (raw > 31 && raw < 41) || raw > 71) {
        SAY_ID(e,
               "Digit 7–8 NIK (tanggal lahir) bernilai %02d, padahal seharusnya 01–31, atau "
               "41–71 untuk perempuan (tanggal + 40). Periksa kembali NIK di KTP Anda.",
               raw);
        SAY_EN(e,
               "Digits 7–8 of the NIK (day of birth) are %02d, but must be 01–31, or 41–71 for "
               "women (day + 40). Check the NIK on your KTP (ID card).",
               raw);
        return fail(e, "nik", "nik_invalid_date");
    }
    if (m < 1 || m > 12) {
        SAY_ID(e,
               "Digit 9–10 NIK (bulan lahir) bernilai %02d, padahal seharusnya 01–12. Periksa "
               "kembali NIK di KTP Anda.",
               m);
        SAY_EN(e,
               "Digits 9–10 of the NIK (month of birth) are %02d, but must be 01–12. Check the "
               "NIK on your KTP (ID card).",
               m);
        return fail(e, "nik", "nik_invalid_date");
    }
    /* The century is unknown; YY a multiple of 4 always has a leap-year reading (00: 2000). */
    int max = m == 2 ? (y % 4 == 0 ? 29 : 28) : days_in_month(2001, m);
    if (d > max) {
        SAY_ID(e,
               "Digit 7–12 NIK menunjukkan tanggal %02d-%02d-%02d, padahal bulan %02d tidak "
               "punya tanggal %d. Periksa kembali NIK di KTP Anda.",
               d, m, y, m, d);
        SAY_EN(e,
               "Digits 7–12 of the NIK give the date %02d-%02d-%02d (DD-MM-YY), but month %02d "
               "has no day %d. Check the NIK on your KTP (ID card).",
               d, m, y, m, d);
        return fail(e, "nik", "nik_invalid_date");
    }
    *dd = d;
    *mm = m;
    *yy = y;
    *female = raw > 40;
    return 0;
}

int validate_nik(const char *nik, struct validate_error *e)
{
    clear(e);
    if (check_16_digits(nik, &NIK, e)) return -1;
    for (int at = 2; at <= 4; at += 2) {
        if (two_digits(nik + at) != 0) continue;
        const char *what_id = at == 2 ? "kode kabupaten/kota" : "kode kecamatan";
        const char *what_en = at == 2 ? "regency/city code" : "district code";
        SAY_ID(e, "Digit %d–%d NIK (%s) tidak boleh 00. Periksa kembali NIK di KTP Anda.", at + 1,
               at + 2, what_id);
        SAY_EN(e,
               "Digits %d–%d of the NIK (the %s) cannot be 00. Check the NIK on your KTP "
               "(ID card).",
               at + 1, at + 2, what_en);
        return fail(e, "nik", "nik_zero_region");
    }
    int d, m, y, female;
    if (nik_date(nik, &d, &m, &y, &female, e)) return -1;
    return 0;
}

int validate_kk(const char *kk, struct validate_error *e)
{
    clear(e);
    return check_16_digits(kk, &KK, e);
}

enum validate_sex validate_nik_sex(const char *nik)
{
    struct validate_error e;
    if (validate_nik(nik, &e)) return VALIDATE_SEX_UNKNOWN;
    return two_digits(nik + 6) > 40 ? VALIDATE_SEX_FEMALE : VALIDATE_SEX_MALE;
}

/* ---- birth date -------------------------------------------------------------------------- */

/* If S reads as a real date written DD-MM-YYYY (or with / or .), put it as YYYY-MM-DD in OUT:
 * the most common way to get the format wrong, worth offering as a suggestion. */
static void suggest_iso(const char *s, char *out, size_t size)
{
    if (strlen(s) != 10) return;
    for (int i = 0; i < 10; i++) {
        if (i == 2 || i == 5) {
            if (s[i] != '-' && s[i] != '/' && s[i] != '.') return;
        } else if (s[i] < '0' || s[i] > '9') {
            return;
        }
    }
    if (s[2] != s[5]) return;
    int d = two_digits(s), m = two_digits(s + 3);
    int y = two_digits(s + 6) * 100 + two_digits(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return;
    snprintf(out, size, "%04d-%02d-%02d", y, m, d);
}

int validate_birth_date(const char *iso, int today_y, int today_m, int today_d,
                        const struct validate_limits *l, int *y, int *m, int *d,
                        struct validate_error *e)
{
    clear(e);
    if (iso == NULL || is_blank(iso)) return required(e, "birth_date");
    int ok = strlen(iso) == 10 && iso[4] == '-' && iso[7] == '-';
    for (int i = 0; ok && i < 10; i++)
        if (i != 4 && i != 7 && (iso[i] < '0' || iso[i] > '9')) ok = 0;
    if (!ok) {
        char q[ECHO_MAX + 4];
        suggest_iso(iso, e->suggestion, sizeof e->suggestion);
        if (echo(iso, q)) {
            SAY_ID(e,
                   "Tanggal lahir harus berformat TTTT-BB-HH (tahun-bulan-tanggal), misalnya "
                   "1990-05-13; yang Anda kirim \"%s\".",
                   q);
            SAY_EN(e,
                   "The birth date must be written YYYY-MM-DD, for example 1990-05-13; you "
                   "sent \"%s\".",
                   q);
        } else {
            SAY_ID(e, "Tanggal lahir harus berformat TTTT-BB-HH (tahun-bulan-tanggal), misalnya "
                      "1990-05-13.");
            SAY_EN(e, "The birth date must be written YYYY-MM-DD, for example 1990-05-13.");
        }
        return fail(e, "birth_date", "invalid_date");
    }
    int yy = two_digits(iso) * 100 + two_digits(iso + 2), mm = two_digits(iso + 5),
        dd = two_digits(iso + 8);
    if (yy < 1) {
        SAY_ID(e, "Tahun lahir 0000 tidak ada. Tulis tahun lahir dengan 4 digit, misalnya "
                  "1990.");
        SAY_EN(e, "There is no year 0000. Write the year of birth with 4 digits, for example "
                  "1990.");
        return fail(e, "birth_date", "invalid_date");
    }
    if (mm < 1 || mm > 12) {
        SAY_ID(e,
               "Bulan %02d tidak ada: bulan harus 01–12. Ingat urutannya TTTT-BB-HH "
               "(tahun-bulan-tanggal), misalnya 1990-05-13.",
               mm);
        SAY_EN(e,
               "There is no month %02d: the month must be 01–12. The order is YYYY-MM-DD, for "
               "example 1990-05-13.",
               mm);
        return fail(e, "birth_date", "invalid_date");
    }
    int dim = days_in_month(yy, mm);
    if (dd < 1 || dd > dim) {
        if (mm == 2 && dd == 29) {
            SAY_ID(e, "Tanggal 29-02-%04d tidak ada: %04d bukan tahun kabisat.", yy, yy);
            SAY_EN(e, "%04d-02-29 does not exist: %04d is not a leap year.", yy, yy);
        } else {
            SAY_ID(e,
                   "Tanggal %02d tidak ada pada bulan %02d-%04d, yang hanya sampai tanggal %d. "
                   "Periksa kembali tanggal lahir Anda.",
                   dd, mm, yy, dim);
            SAY_EN(e,
                   "Day %02d does not exist in %04d-%02d, which has %d days. Check your birth "
                   "date.",
                   dd, yy, mm, dim);
        }
        return fail(e, "birth_date", "invalid_date");
    }
    if (yy > today_y || (yy == today_y && (mm > today_m || (mm == today_m && dd > today_d)))) {
        SAY_ID(e,
               "Tanggal lahir %02d-%02d-%04d ada di masa depan. Periksa kembali tahun lahir "
               "Anda.",
               dd, mm, yy);
        SAY_EN(e, "The birth date %04d-%02d-%02d is in the future. Check the year of birth.", yy,
               mm, dd);
        return fail(e, "birth_date", "invalid_date");
    }
    if (l != NULL) {
        int age = age_on(yy, mm, dd, today_y, today_m, today_d);
        if (age < l->min_age_years) {
            /* The first day of eligibility: the birthday at the minimum age (1 March for a
             * 29 February birthday in a common year). */
            int ey = yy + l->min_age_years, em = mm, ed = dd;
            if (em == 2 && ed == 29 && !is_leap(ey)) {
                em = 3;
                ed = 1;
            }
            SAY_ID(e,
                   "Umur Anda %d tahun; pendaftaran ini untuk umur %d–%d tahun, jadi Anda baru "
                   "dapat mendaftar mulai %02d-%02d-%04d. Jika tanggal lahir salah ketik, "
                   "perbaiki.",
                   age, l->min_age_years, l->max_age_years, ed, em, ey);
            SAY_EN(e,
                   "You are %d; this registration is for ages %d to %d, so you can register from "
                   "%04d-%02d-%02d. If the birth date is mistyped, correct it.",
                   age, l->min_age_years, l->max_age_years, ey, em, ed);
            return fail(e, "birth_date", "too_young");
        }
        if (age > l->max_age_years) {
            SAY_ID(e,
                   "Umur Anda %d tahun; pendaftaran ini hanya untuk umur %d–%d tahun. Jika tahun "
                   "lahir salah ketik, perbaiki.",
                   age, l->min_age_years, l->max_age_years);
            SAY_EN(e,
                   "You are %d; this registration is only for ages %d to %d. If the year of "
                   "birth is mistyped, correct it.",
                   age, l->min_age_years, l->max_age_years);
            return fail(e, "birth_date", "too_old");
        }
    }
    if (y) *y = yy;
    if (m) *m = mm;
    if (d) *d = dd;
    return 0;
}

int validate_nik_matches_birth_date(const char *nik, int y, int m, int d, int confirm_mismatch,
                                    struct validate_error *e)
{
    if (validate_nik(nik, e)) return -1;
    int nd, nm, ny, female;
    if (nik_date(nik, &nd, &nm, &ny, &female, e)) return -1; /* validate_nik checked it */
    int y2 = ((y % 100) + 100) % 100;
    int bad_d = nd != d, bad_m = nm != m, bad_y = ny != y2;
    if (!bad_d && !bad_m && !bad_y) return 0;
    if (confirm_mismatch) return 0;

    /* Name the parts that disagree: "tanggal", "bulan dan tahun", "tanggal, bulan dan tahun". */
    const char *pid[3], *pen[3];
    int n = 0;
    if (bad_d) pid[n] = "tanggal", pen[n++] = "day";
    if (bad_m) pid[n] = "bulan", pen[n++] = "month";
    if (bad_y) pid[n] = "tahun", pen[n++] = "year";
    char lid[48], len_[48];
    if (n == 1) {
        snprintf(lid, sizeof lid, "%s", pid[0]);
        snprintf(len_, sizeof len_, "the %s differs", pen[0]);
    } else if (n == 2) {
        snprintf(lid, sizeof lid, "%s dan %s", pid[0], pid[1]);
        snprintf(len_, sizeof len_, "the %s and %s differ", pen[0], pen[1]);
    } else {
        snprintf(lid, sizeof lid, "%s, %s dan %s", pid[0], pid[1], pid[2]);
        snprintf(len_, sizeof len_, "the %s, %s and %s differ", pen[0], pen[1], pen[2]);
    }
    char raw[7];
    memcpy(raw, nik + 6, 6);
    raw[6] = '\0';
    SAY_ID(e,
           "Tanggal lahir %02d-%02d-%04d tidak sesuai dengan NIK: digit 7–12 NIK (%s%s) "
           "menunjukkan %02d-%02d-%02d (beda %s). Periksa kembali, atau kirim "
           "\"confirm_mismatch\": true jika data Dukcapil memang berbeda.",
           d, m, y, raw, female ? "; perempuan: tanggal + 40" : "", nd, nm, ny, lid);
    SAY_EN(e,
           "The birth date %04d-%02d-%02d does not match the NIK: its digits 7–12 (%s%s) give "
           "%02d-%02d-%02d (DD-MM-YY; %s). Check it, or send \"confirm_mismatch\": true if "
           "the civil registry record really differs.",
           y, m, d, raw, female ? "; a woman: day + 40" : "", nd, nm, ny, len_);
    return fail(e, "birth_date", "nik_birth_date_mismatch");
}

/* ---- email ------------------------------------------------------------------------------- */

/* Providers whose misspellings are worth catching, most used first (ties go to the first). */
static const char *const typo_targets[] = {
    "gmail.com", "yahoo.co.id", "yahoo.com",      "hotmail.com",    "outlook.com",
    "ymail.com", "icloud.com",  "googlemail.com", "rocketmail.com",
};

/* Real domains close to a target that must never be "corrected". */
static const char *const known_domains[] = {
    "mail.com",      "email.com",    "gmx.com",       "aol.com",    "live.com",
    "msn.com",       "me.com",       "mac.com",       "cloud.com",  "yahoo.co.uk",
    "yahoo.co.in",   "yahoo.co.jp",  "yahoo.ca",      "yahoo.cn",   "yahoo.com.sg",
    "yahoo.com.my",  "yahoo.com.au", "yahoo.com.ph",  "hotmail.ca", "hotmail.co.uk",
    "outlook.co.id", "outlook.cl",   "hotmail.co.id", "zoho.com",   "proton.me",
};

/* Optimal string alignment distance between A and B (a swap of neighbours costs 1), or 3 when it
 * exceeds 2 or either string is longer than 32 bytes. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32 || (la > lb ? la - lb : lb - la) > 2) return 3;
    int prev2[33], prev[33], cur[33];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        int row_min = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v) v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
            if (v < row_min) row_min = v;
        }
        if (row_min > 2) return 3;
        memcpy(prev2, prev, sizeof prev);
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb] > 2 ? 3 : prev[lb];
}

/* The provider DOMAIN (lowercase) is probably a misspelling of, or NULL. A domain without a dot
 * that is a provider's first label ("gmail") also counts. */
static const char *typo_of(const char *domain)
{
    for (size_t i = 0; i < sizeof typo_targets / sizeof typo_targets[0]; i++)
        if (strcmp(domain, typo_targets[i]) == 0) return NULL;
    for (size_t i = 0; i < sizeof known_domains / sizeof known_domains[0]; i++)
        if (strcmp(domain, known_domains[i]) == 0) return NULL;
    const char *best = NULL;
    int best_d = 3;
    for (size_t i = 0; i < sizeof typo_targets / sizeof typo_targets[0]; i++) {
        int dist = edit_distance(domain, typo_targets[i]);
        if (dist < best_d) best = typo_targets[i], best_d = dist;
    }
    if (best == NULL && strchr(domain, '.') == NULL) {
        size_t n = strlen(domain);
        for (size_t i = 0; i < sizeof typo_targets / sizeof typo_targets[0]; i++)
            if (n > 0 && strncmp(domain, typo_targets[i], n) == 0 && typo_targets[i][n] == '.')
                return typo_targets[i];
    }
    return best;
}

static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Refuse the domain DOM (lowercased) as invalid_email with the given messages, offering a
 * provider's domain when DOM looks like a mangled one. */
static int bad_domain(struct validate_error *e, const char *dom)
{
    const char *s = typo_of(dom);
    if (s) snprintf(e->suggestion, sizeof e->suggestion, "%s", s);
    return fail(e, "email", "invalid_email");
}

/* Check the domain part DOM (lowercased, ASCII, non-empty). */
static int check_domain(const char *dom, struct validate_error *e)
{
    for (const char *p = dom; *p; p++) {
        if (is_ldh((unsigned char)*p) || *p == '.') continue;
        char cid[32], cen[32];
        char_name((unsigned char)*p, cid, cen);
        SAY_ID(e,
               "Domain email (setelah @) hanya boleh berisi huruf, angka, tanda hubung (-) dan "
               "titik; %s tidak boleh dipakai.",
               cid);
        SAY_EN(e,
               "The email domain (after the @) may contain only letters, digits, hyphens (-) "
               "and dots; %s is not allowed.",
               cen);
        return bad_domain(e, dom);
    }
    if (strchr(dom, '.') == NULL) {
        SAY_ID(e, "Domain email (setelah @) harus lengkap dengan titik dan akhirannya, misalnya "
                  "gmail.com.");
        SAY_EN(e, "The email domain (after the @) must be complete, with a dot and its ending, "
                  "for example gmail.com.");
        return bad_domain(e, dom);
    }
    const char *label = dom, *tld = dom;
    for (const char *p = dom;; p++) {
        if (*p != '.' && *p != '\0') continue;
        size_t n = (size_t)(p - label);
        if (n == 0) {
            SAY_ID(e, "Domain email (setelah @) tidak boleh diawali atau diakhiri titik, atau "
                      "memuat dua titik berurutan.");
            SAY_EN(e, "The email domain (after the @) cannot start or end with a dot, or have "
                      "two dots in a row.");
            return bad_domain(e, dom);
        }
        if (n > EMAIL_LABEL_MAX) {
            SAY_ID(e,
                   "Setiap bagian domain email (di antara titik) paling panjang 63 karakter; "
                   "salah satunya %zu karakter.",
                   n);
            SAY_EN(e,
                   "Each part of the email domain (between dots) can be at most 63 "
                   "characters; one is %zu.",
                   n);
            return bad_domain(e, dom);
        }
        if (label[0] == '-' || p[-1] == '-') {
            SAY_ID(e, "Bagian domain email (di antara titik) tidak boleh diawali atau diakhiri "
                      "tanda hubung (-).");
            SAY_EN(e, "A part of the email domain (between dots) cannot start or end with a "
                      "hyphen (-).");
            return bad_domain(e, dom);
        }
        tld = label;
        if (*p == '\0') break;
        label = p + 1;
    }
    int tld_ok = strncmp(tld, "xn--", 4) == 0 && strlen(tld) > 4;
    if (!tld_ok) {
        tld_ok = strlen(tld) >= 2;
        for (const char *p = tld; *p; p++)
            if (*p < 'a' || *p > 'z') tld_ok = 0;
    }
    if (!tld_ok) {
        char q[ECHO_MAX + 4];
        if (echo(tld, q)) {
            SAY_ID(e,
                   "Akhiran domain email \".%s\" tidak berlaku; akhiran harus berupa huruf, "
                   "misalnya .com atau .id.",
                   q);
            SAY_EN(e,
                   "The email domain ending \".%s\" is not valid; it must be letters, for "
                   "example .com or .id.",
                   q);
        } else {
            SAY_ID(e, "Akhiran domain email tidak berlaku; akhiran harus berupa huruf, misalnya "
                      ".com atau .id.");
            SAY_EN(e, "The email domain ending is not valid; it must be letters, for example "
                      ".com or .id.");
        }
        return bad_domain(e, dom);
    }
    return 0;
}

int validate_email(const char *email, int confirm, char *normalised, size_t len,
                   struct validate_error *e)
{
    clear(e);
    if (normalised && len) normalised[0] = '\0';
    if (email == NULL || is_blank(email)) return required(e, "email");
    const char *s = email, *end = email + strlen(email);
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    size_t n = (size_t)(end - s);
    if (n > EMAIL_TOTAL_MAX) {
        SAY_ID(e,
               "Alamat email terlalu panjang: %zu karakter, paling banyak 254. Periksa "
               "kembali alamat email Anda.",
               n);
        SAY_EN(e,
               "The email address is too long: %zu characters, at most 254. Check your "
               "email address.",
               n);
        return fail(e, "email", "email_too_long");
    }
    const char *at = NULL;
    int ats = 0;
    for (const char *p = s; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '@') {
            if (!at) at = p;
            ats++;
            continue;
        }
        if (c > 0x20 && c < 0x7f) continue;
        int pos = char_pos(s, p);
        if (c == ' ' || c == '\t') {
            SAY_ID(e, "Alamat email tidak boleh berisi spasi (karakter ke-%d). Hapus spasinya.",
                   pos);
            SAY_EN(e, "The email address cannot contain spaces (character %d). Remove them.", pos);
        } else if (c < 0x80) {
            SAY_ID(e,
                   "Alamat email tidak boleh berisi karakter kontrol (karakter ke-%d). Ketik "
                   "ulang alamat email Anda.",
                   pos);
            SAY_EN(e,
                   "The email address cannot contain control characters (character %d). "
                   "Type it again.",
                   pos);
        } else {
            SAY_ID(e,
                   "Alamat email hanya boleh berisi huruf tanpa aksen (a–z), angka dan tanda "
                   "baca tertentu; karakter ke-%d tidak termasuk.",
                   pos);
            SAY_EN(e,
                   "The email address may contain only unaccented letters (a–z), digits and "
                   "some punctuation; character %d is not one of them.",
                   pos);
        }
        return fail(e, "email", "invalid_email");
    }
    if (ats != 1) {
        if (ats == 0) {
            SAY_ID(e, "Alamat email harus memuat tanda @, misalnya nama@gmail.com.");
            SAY_EN(e, "The email address must contain an @, for example name@gmail.com.");
        } else {
            SAY_ID(e, "Alamat email hanya boleh memuat satu tanda @; yang Anda kirim memuat %d.",
                   ats);
            SAY_EN(e, "The email address must contain exactly one @; yours has %d.", ats);
        }
        return fail(e, "email", "invalid_email");
    }
    size_t ln = (size_t)(at - s), dn = (size_t)(end - at - 1);
    if (ln == 0) {
        SAY_ID(e, "Bagian sebelum @ kosong; tulis alamat email lengkap, misalnya "
                  "nama@gmail.com.");
        SAY_EN(e, "Nothing comes before the @; write the whole address, for example "
                  "name@gmail.com.");
        return fail(e, "email", "invalid_email");
    }
    if (ln > EMAIL_LOCAL_MAX) {
        SAY_ID(e, "Bagian sebelum @ paling panjang 64 karakter; yang Anda kirim %zu karakter.", ln);
        SAY_EN(e, "The part before the @ can be at most 64 characters; yours has %zu.", ln);
        return fail(e, "email", "email_too_long");
    }
    for (const char *p = s; p < at; p++) {
        if (is_atext((unsigned char)*p)) continue;
        if (*p == '.') {
            if (p == s || p + 1 == at || p[1] == '.') {
                SAY_ID(e, "Titik pada bagian sebelum @ tidak boleh di awal, di akhir, atau dua "
                          "berurutan (..).");
                SAY_EN(e, "A dot in the part before the @ cannot come first, last, or twice in "
                          "a row (..).");
                return fail(e, "email", "invalid_email");
            }
            continue;
        }
        char cid[32], cen[32];
        char_name((unsigned char)*p, cid, cen);
        SAY_ID(e, "Bagian sebelum @ tidak boleh berisi %s (karakter ke-%d).", cid, char_pos(s, p));
        SAY_EN(e, "The part before the @ cannot contain %s (character %d).", cen, char_pos(s, p));
        return fail(e, "email", "invalid_email");
    }
    if (dn == 0) {
        SAY_ID(e, "Bagian setelah @ kosong; tulis domain email Anda, misalnya gmail.com.");
        SAY_EN(e, "Nothing comes after the @; write your email domain, for example gmail.com.");
        return fail(e, "email", "invalid_email");
    }
    char dom[EMAIL_TOTAL_MAX + 1];
    for (size_t i = 0; i < dn; i++) {
        char c = at[1 + i];
        dom[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    dom[dn] = '\0';
    if (check_domain(dom, e)) return -1;

    const char *typo = confirm ? NULL : typo_of(dom);
    if (typo) {
        snprintf(e->suggestion, sizeof e->suggestion, "%s", typo);
        SAY_ID(e,
               "Domain email \"%s\" sepertinya salah ketik; mungkin maksud Anda \"%s\"? "
               "Perbaiki, atau kirim \"confirm_email\": true jika alamat ini memang benar.",
               dn <= 40 ? dom : "...", typo);
        SAY_EN(e,
               "The email domain \"%s\" looks mistyped; did you mean \"%s\"? Correct it, or send "
               "\"confirm_email\": true if the address is right.",
               dn <= 40 ? dom : "...", typo);
        return fail(e, "email", "email_typo");
    }
    if (normalised == NULL || len < ln + 1 + dn + 1) return internal(e, "email");
    memcpy(normalised, s, ln);
    normalised[ln] = '@';
    memcpy(normalised + ln + 1, dom, dn + 1);
    return 0;
}

/* ---- phone ------------------------------------------------------------------------------- */

int validate_phone(const char *phone, char *out, size_t len, struct validate_error *e)
{
    clear(e);
    if (out && len) out[0] = '\0';
    if (phone == NULL || is_blank(phone)) return required(e, "phone");
    char dig[24];
    size_t nd = 0, total = 0;
    int plus = 0;
    for (const char *p = phone; *p; p++) {
        char c = *p;
        if (c >= '0' && c <= '9') {
            if (nd < sizeof dig - 1) dig[nd++] = c;
            total++;
            continue;
        }
        if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') continue;
        if (c == '+' && total == 0 && !plus) {
            plus = 1;
            continue;
        }
        char cid[32], cen[32];
        char_name((unsigned char)c, cid, cen);
        int pos = char_pos(phone, p);
        SAY_ID(e,
               "Nomor HP hanya boleh berisi angka, boleh diawali + dan dipisah spasi atau tanda "
               "hubung; karakter ke-%d adalah %s. Contoh: 081234567890.",
               pos, cid);
        SAY_EN(e,
               "The mobile number may contain only digits, optionally a leading + and spaces or "
               "hyphens; character %d is %s. Example: 081234567890.",
               pos, cen);
        return fail(e, "phone", "invalid_phone");
    }
    dig[nd] = '\0';
    if (total == 0) {
        SAY_ID(e, "Nomor HP tidak berisi angka. Tulis nomor HP Anda, misalnya 081234567890.");
        SAY_EN(e, "The mobile number has no digits. Write your mobile number, for example "
                  "081234567890.");
        return fail(e, "phone", "invalid_phone");
    }
    /* Find the national number: after +62, 62 or 0062, or after the trunk 0. */
    const char *nat = dig;
    if (plus) {
        if (strncmp(dig, "62", 2) != 0) {
            SAY_ID(e,
                   "Hanya nomor HP Indonesia yang diterima (+62 atau 08...); nomor Anda diawali "
                   "+%.2s. Kirim nomor HP Indonesia, misalnya 081234567890.",
                   dig);
            SAY_EN(e,
                   "Only Indonesian mobile numbers are accepted (+62 or 08...); yours starts with "
                   "+%.2s. Send an Indonesian mobile number, for example 081234567890.",
                   dig);
            return fail(e, "phone", "phone_not_indonesian");
        }
        nat = dig + 2;
    } else if (strncmp(dig, "0062", 4) == 0) {
        nat = dig + 4;
    } else if (strncmp(dig, "62", 2) == 0) {
        nat = dig + 2;
    }
    if (nat[0] == '0') nat++; /* 08..., or +62 08... written with the trunk 0 kept */
    size_t nn = total - (size_t)(nat - dig);
    if (nat[0] != '8' && nn > 0) {
        SAY_ID(e,
               "Nomor 0%s bukan nomor HP: nomor HP Indonesia diawali 08 (atau +628). Kirim "
               "nomor HP Anda, bukan nomor telepon rumah atau kantor.",
               nat);
        SAY_EN(e,
               "The number 0%s is not a mobile number: Indonesian mobile numbers start with "
               "08 (or +628). Send your mobile number, not a landline.",
               nat);
        return fail(e, "phone", "phone_not_mobile");
    }
    if (nn < 9 || nn > 12) {
        SAY_ID(e,
               "Nomor HP harus 10–13 digit bila ditulis dengan awalan 0 (misalnya 081234567890); "
               "nomor Anda %zu digit. Periksa kembali nomornya.",
               nn + 1);
        SAY_EN(e,
               "The mobile number must have 10–13 digits when written with the leading 0 (for "
               "example 081234567890); yours has %zu. Check the number.",
               nn + 1);
        return fail(e, "phone", "phone_wrong_length");
    }
    if (out == NULL || len < 3 + nn + 1) return internal(e, "phone");
    memcpy(out, "+62", 3);
    memcpy(out + 3, nat, nn + 1);
    return 0;
}

/* ---- name -------------------------------------------------------------------------------- */

/* Decode one UTF-8 character at S (NUL-terminated) into *CP; returns its length, or 0 when the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and values past U+10FFFF
 * included). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

enum name_class { NC_LETTER, NC_SPACE, NC_PUNCT, NC_DIGIT, NC_CONTROL, NC_INVISIBLE, NC_SYMBOL };

static enum name_class classify(uint32_t c)
{
    if (c == ' ' || c == 0xA0) return NC_SPACE;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return NC_LETTER;
    if (c == '\'' || c == '-' || c == '.' || c == ',') return NC_PUNCT;
    if ((c >= '0' && c <= '9') || (c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9) ||
        (c >= 0xFF10 && c <= 0xFF19))
        return NC_DIGIT;
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return NC_CONTROL;
    if (c < 0x80) return NC_SYMBOL;
    /* Characters that show nothing but can hide or reorder text. */
    if (c == 0xAD || c == 0x61C || c == 0x180E || (c >= 0x200B && c <= 0x200F) ||
        (c >= 0x2028 && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) || c == 0xFEFF ||
        (c >= 0xFFF9 && c <= 0xFFFB) || c == 0xFFFE || c == 0xFFFF ||
        (c >= 0xE0000 && c <= 0xE007F))
        return NC_INVISIBLE;
    return NC_LETTER;
}

int validate_name(const char *name, char *out, size_t len, struct validate_error *e)
{
    clear(e);
    if (out && len) out[0] = '\0';
    if (name == NULL) return required(e, "name");
    const unsigned char *s = (const unsigned char *)name;

    /* Pass 1: valid UTF-8, allowed characters; count what the normal form will hold. */
    size_t cps = 0, bytes = 0, pending_space = 0;
    int letters = 0, pos = 0;
    for (size_t i = 0; s[i];) {
        uint32_t c;
        size_t n = utf8_next(s + i, &c);
        pos++;
        if (n == 0) {
            SAY_ID(e,
                   "Nama berisi teks rusak (bukan UTF-8 yang valid) pada byte ke-%zu. Ketik ulang "
                   "nama Anda.",
                   i + 1);
            SAY_EN(e,
                   "The name contains garbled text (not valid UTF-8) at byte %zu. Type it "
                   "again.",
                   i + 1);
            return fail(e, "name", "name_invalid_utf8");
        }
        enum name_class k = classify(c);
        switch (k) {
        case NC_SPACE:
            if (cps > 0) pending_space = 1;
            break;
        case NC_LETTER:
        case NC_PUNCT:
            if (pending_space) cps++, bytes++, pending_space = 0;
            cps++;
            bytes += n;
            if (k == NC_LETTER) letters = 1;
            break;
        case NC_DIGIT:
            if (c < 0x80) {
                SAY_ID(e,
                       "Nama tidak boleh berisi angka; karakter ke-%d adalah \"%c\". Tulis "
                       "nama sesuai KTP.",
                       pos, (char)c);
                SAY_EN(e,
                       "The name cannot contain digits; character %d is \"%c\". Write the "
                       "name as on your KTP (ID card).",
                       pos, (char)c);
            } else {
                SAY_ID(e,
                       "Nama tidak boleh berisi angka; karakter ke-%d adalah angka. Tulis "
                       "nama sesuai KTP.",
                       pos);
                SAY_EN(e,
                       "The name cannot contain digits; character %d is a digit. Write the "
                       "name as on your KTP (ID card).",
                       pos);
            }
            return fail(e, "name", "name_invalid_character");
        case NC_CONTROL:
            SAY_ID(e,
                   "Nama tidak boleh berisi karakter kontrol seperti tab atau baris baru "
                   "(karakter ke-%d). Tulis nama dalam satu baris.",
                   pos);
            SAY_EN(e,
                   "The name cannot contain control characters such as tabs or line breaks "
                   "(character %d). Write the name on one line.",
                   pos);
            return fail(e, "name", "name_invalid_character");
        case NC_INVISIBLE:
            SAY_ID(e,
                   "Nama berisi karakter tak terlihat (karakter ke-%d), biasanya terbawa saat "
                   "menyalin teks. Ketik ulang nama Anda.",
                   pos);
            SAY_EN(e,
                   "The name contains an invisible character (character %d), usually picked "
                   "up when copying text. Type the name again.",
                   pos);
            return fail(e, "name", "name_invalid_character");
        case NC_SYMBOL: {
            char cid[32], cen[32];
            char_name((unsigned char)c, cid, cen);
            SAY_ID(e,
                   "Karakter ke-%d (%s) tidak boleh dipakai dalam nama: gunakan hanya huruf, "
                   "spasi, apostrof ('), tanda hubung (-), titik (.) dan koma (,).",
                   pos, cid);
            SAY_EN(e,
                   "Character %d (%s) is not allowed in a name: use only letters, spaces, "
                   "apostrophes ('), hyphens (-), periods (.) and commas (,).",
                   pos, cen);
            return fail(e, "name", "name_invalid_character");
        }
        }
        i += n;
    }
    if (cps == 0) return required(e, "name");
    if (!letters) {
        SAY_ID(e, "Nama harus memuat huruf, bukan hanya tanda baca. Tulis nama lengkap sesuai "
                  "KTP.");
        SAY_EN(e, "The name must contain letters, not only punctuation. Write your full name as "
                  "on your KTP (ID card).");
        return fail(e, "name", "name_no_letters");
    }
    if (cps < NAME_MIN) {
        SAY_ID(e, "Nama terlalu pendek: paling sedikit 2 huruf. Tulis nama lengkap sesuai KTP.");
        SAY_EN(e, "The name is too short: at least 2 letters. Write your full name as on your "
                  "KTP (ID card).");
        return fail(e, "name", "name_too_short");
    }
    if (cps > NAME_MAX_CP) {
        SAY_ID(e,
               "Nama terlalu panjang: %zu karakter, paling banyak 100. Tulis nama sesuai "
               "KTP, tanpa gelar.",
               cps);
        SAY_EN(e,
               "The name is too long: %zu characters, at most 100. Write the name as on "
               "your KTP (ID card), without titles.",
               cps);
        return fail(e, "name", "name_too_long");
    }
    if (out == NULL || len < bytes + 1) return internal(e, "name");

    /* Pass 2: write the normal form (every character already checked). */
    size_t o = 0;
    pending_space = 0;
    for (size_t i = 0; s[i];) {
        uint32_t c;
        size_t n = utf8_next(s + i, &c);
        if (classify(c) == NC_SPACE) {
            if (o > 0) pending_space = 1;
        } else {
            if (pending_space) out[o++] = ' ', pending_space = 0;
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
    return 0;
}
