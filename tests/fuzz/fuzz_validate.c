/* fuzz_validate.c: libFuzzer target for the registration validators (common/validate.c).
 *
 * The first input byte is a setting: bit 0 the email's confirm flag, bit 1 the birth date's
 * confirm_mismatch flag, bits 2-7 the size (1-64) of a deliberately small output buffer. The
 * rest, cut at its first NUL, is given to every validator in turn. Every struct validate_error
 * is filled with garbage before each call, and outputs go to heap buffers of exactly their
 * size, so a missing NUL or a write past the end shows. Checked with abort():
 *   - on success the error is cleared; on refusal field names the validator's field, code is one
 *     of that field's documented codes, both messages are non-empty, NUL-terminated, shorter
 *     than their buffers (not truncated) and valid UTF-8, and the suggestion is NUL-terminated;
 *     an output is "" on refusal;
 *   - NIK: an accepted NIK is 16 digits beginning with a province code, is a valid KK, and has
 *     a sex; a refused one has none. KK: an accepted KK is 16 digits, province first;
 *   - birth date: an accepted date is the input, written back from Y-M-D; a suggested date is
 *     a real one; the NIK/date comparison refuses an invalid NIK with the NIK's own error, and
 *     accepts a valid one when the mismatch is confirmed;
 *   - email: an accepted address is at most 254 characters with one @ and validates again to
 *     itself (with the same confirm flag); a typo carries a suggestion that, put in place of the domain, is accepted, and
 *     confirming the typo accepts the address;
 *   - phone: an accepted number is +628 and 8-11 more digits, and validates again to itself;
 *   - name: an accepted name is no longer than the input, has no space at either end nor two
 *     in a row, and validates again to itself;
 *   - with the small buffer, email, phone and name either give the same answer as with a big
 *     one or refuse with internal_error when the big answer does not fit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/validate.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TODAY_Y 2026
#define TODAY_M 12
#define TODAY_D 7

static const struct validate_limits limits = {18, 64};

static const char *const codes[][8] = {
    {"nik", "nik_not_numeric", "nik_wrong_length", "nik_unknown_province", "nik_zero_region",
     "nik_invalid_date"},
    {"kk", "kk_not_numeric", "kk_wrong_length", "kk_unknown_province"},
    {"birth_date", "invalid_date", "too_young", "too_old", "nik_birth_date_mismatch"},
    {"email", "invalid_email", "email_too_long", "email_typo"},
    {"phone", "invalid_phone", "phone_not_indonesian", "phone_not_mobile", "phone_wrong_length"},
    {"name", "name_invalid_utf8", "name_invalid_character", "name_no_letters", "name_too_short",
     "name_too_long"},
};

static int documented(const char *field, const char *code)
{
    if (!strcmp(code, "required") || !strcmp(code, "internal_error")) return 1;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(codes[i][0], field)) continue;
        for (size_t j = 1; j < 8 && codes[i][j]; j++)
            if (!strcmp(codes[i][j], code)) return 1;
    }
    return 0;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80                  ? 0
                : *p >= 0xC2 && *p <= 0xDF ? 1
                : *p >= 0xE0 && *p <= 0xEF ? 2
                : *p >= 0xF0 && *p <= 0xF4 ? 3
                                           : -1;
        if (n < 0) return 0;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += n + 1;
    }
    return 1;
}

static void garble(struct validate_error *e)
{
    memset(e, 0xA5, sizeof *e);
    e->field = e->code = (const char *)e; /* neither NULL nor a real string */
}

/* Check the error E after a call that returned RC for FIELD. */
static void check_err(int rc, const struct validate_error *e, const char *field)
{
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        CHECK(e->field == NULL && e->code == NULL);
        CHECK(e->msg_id[0] == 0 && e->msg_en[0] == 0 && e->suggestion[0] == 0);
        return;
    }
    CHECK(e->field && !strcmp(e->field, field));
    CHECK(e->code && documented(field, e->code));
    CHECK(memchr(e->msg_id, 0, sizeof e->msg_id - 1) && e->msg_id[0]);
    CHECK(memchr(e->msg_en, 0, sizeof e->msg_en - 1) && e->msg_en[0]);
    CHECK(memchr(e->suggestion, 0, sizeof e->suggestion));
    CHECK(utf8_valid(e->msg_id) && utf8_valid(e->msg_en) && utf8_valid(e->suggestion));
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static void fuzz_nik_kk(const char *s)
{
    struct validate_error e;
    garble(&e);
    int rc = validate_nik(s, &e);
    check_err(rc, &e, "nik");
    enum validate_sex sex = validate_nik_sex(s);
    if (rc == 0) {
        CHECK(strlen(s) == 16 && all_digits(s, 16));
        CHECK(validate_is_province((s[0] - '0') * 10 + s[1] - '0'));
        CHECK(sex == VALIDATE_SEX_MALE || sex == VALIDATE_SEX_FEMALE);
        CHECK(sex == (s[6] >= '4' ? VALIDATE_SEX_FEMALE : VALIDATE_SEX_MALE));
        garble(&e);
        CHECK(validate_kk(s, &e) == 0);
    } else {
        CHECK(sex == VALIDATE_SEX_UNKNOWN);
    }
    garble(&e);
    rc = validate_kk(s, &e);
    check_err(rc, &e, "kk");
    if (rc == 0) {
        CHECK(strlen(s) == 16 && all_digits(s, 16));
        CHECK(validate_is_province((s[0] - '0') * 10 + s[1] - '0'));
    }
}

static void fuzz_birth_date(const char *s, int confirm)
{
    struct validate_error e;
    int y = -1, m = -1, d = -1;
    garble(&e);
    int rc = validate_birth_date(s, TODAY_Y, TODAY_M, TODAY_D, &limits, &y, &m, &d, &e);
    check_err(rc, &e, "birth_date");
    int ny = -1, nm = -1, nd = -1;
    garble(&e);
    int rc_nolimit = validate_birth_date(s, TODAY_Y, TODAY_M, TODAY_D, NULL, &ny, &nm, &nd, &e);
    check_err(rc_nolimit, &e, "birth_date");
    if (rc == 0) CHECK(rc_nolimit == 0 && ny == y && nm == m && nd == d);
    if (rc_nolimit == 0) {
        char back[16];
        snprintf(back, sizeof back, "%04d-%02d-%02d", ny, nm, nd);
        CHECK(!strcmp(back, s));
    } else if (e.suggestion[0]) {
        char sug[sizeof e.suggestion];
        memcpy(sug, e.suggestion, sizeof sug);
        garble(&e);
        CHECK(validate_birth_date(sug, 9999, 12, 31, NULL, NULL, NULL, NULL, &e) == 0);
    }
    /* the NUL-terminated input read as a NIK against a fixed date, and against its own date */
    int nik_ok = validate_nik(s, &e) == 0;
    garble(&e);
    rc = validate_nik_matches_birth_date(s, 1990, 5, 13, confirm, &e);
    if (!nik_ok) {
        CHECK(rc == -1 && e.field && !strcmp(e.field, "nik"));
        check_err(rc, &e, "nik");
    } else {
        check_err(rc, &e, "birth_date");
        if (confirm) CHECK(rc == 0);
        int dd = (s[6] - '0') * 10 + s[7] - '0', mm = (s[8] - '0') * 10 + s[9] - '0';
        int yy = 1900 + (s[10] - '0') * 10 + s[11] - '0';
        garble(&e);
        CHECK(validate_nik_matches_birth_date(s, yy, mm, dd > 40 ? dd - 40 : dd, 0, &e) == 0);
        check_err(0, &e, "birth_date");
    }
}

/* OUT of exactly LEN bytes on the heap, filled with garbage. */
static char *out_buf(size_t len)
{
    char *b = malloc(len);
    if (!b) abort();
    memset(b, 0x5A, len);
    return b;
}

/* Compare the answer with a small buffer (RC_S, OUT_S of SMALL bytes) to the big one. */
static void check_small(int rc, const char *out, int rc_s, const char *out_s, size_t small,
                        const struct validate_error *e_s)
{
    if (rc != 0) {
        CHECK(rc_s == -1);
        return;
    }
    if (strlen(out) < small) {
        CHECK(rc_s == 0 && !strcmp(out, out_s));
    } else {
        CHECK(rc_s == -1 && !strcmp(e_s->code, "internal_error") && out_s[0] == 0);
    }
}

static void fuzz_email(const char *s, int confirm, size_t small)
{
    struct validate_error e;
    char *out = out_buf(VALIDATE_EMAIL_MAX);
    garble(&e);
    int rc = validate_email(s, confirm, out, VALIDATE_EMAIL_MAX, &e);
    check_err(rc, &e, "email");
    if (rc == 0) {
        size_t n = strlen(out);
        CHECK(n >= 3 && n <= 254);
        const char *at = strchr(out, '@');
        CHECK(at && !strchr(at + 1, '@'));
        char *again = out_buf(VALIDATE_EMAIL_MAX);
        garble(&e);
        CHECK(validate_email(out, confirm, again, VALIDATE_EMAIL_MAX, &e) == 0);
        CHECK(!strcmp(again, out));
        free(again);
    } else {
        CHECK(out[0] == 0);
        if (!strcmp(e.code, "email_typo")) {
            CHECK(!confirm && e.suggestion[0]);
            char fixed[VALIDATE_EMAIL_MAX + sizeof e.suggestion];
            const char *at = strchr(s, '@');
            CHECK(at);
            snprintf(fixed, sizeof fixed, "%.*s%s", (int)(at + 1 - s), s, e.suggestion);
            char *o2 = out_buf(sizeof fixed);
            garble(&e);
            int rc_fixed = validate_email(fixed, 0, o2, sizeof fixed, &e);
            if (rc_fixed) fprintf(stderr, "fuzz_validate: %s refused: %s\n", fixed, e.code);
            CHECK(rc_fixed == 0);
            garble(&e);
            CHECK(validate_email(s, 1, o2, sizeof fixed, &e) == 0);
            free(o2);
        }
    }
    char *o_s = out_buf(small);
    garble(&e);
    int rc_s = validate_email(s, confirm, o_s, small, &e);
    check_err(rc_s, &e, "email");
    check_small(rc, out, rc_s, o_s, small, &e);
    free(o_s);
    free(out);
}

/* A validator that writes a normal form: validate_phone(), validate_name(). */
typedef int normaliser(const char *in, char *out, size_t len, struct validate_error *e);

/* Run FN on S with a CAP-byte output and with a SMALL-byte one, check both answers and that
 * an accepted normal form validates again to itself. Returns the big output (free it), or
 * NULL when S was refused. */
static char *normalise(normaliser *fn, const char *field, const char *s, size_t cap, size_t small)
{
    struct validate_error e;
    char *out = out_buf(cap);
    garble(&e);
    int rc = fn(s, out, cap, &e);
    check_err(rc, &e, field);
    if (rc == 0) {
        char *again = out_buf(cap);
        garble(&e);
        CHECK(fn(out, again, cap, &e) == 0 && !strcmp(again, out));
        free(again);
    } else {
        CHECK(out[0] == 0);
    }
    char *o_s = out_buf(small);
    garble(&e);
    int rc_s = fn(s, o_s, small, &e);
    check_err(rc_s, &e, field);
    check_small(rc, out, rc_s, o_s, small, &e);
    free(o_s);
    if (rc == 0) return out;
    free(out);
    return NULL;
}

static void fuzz_phone(const char *s, size_t small)
{
    char *out = normalise(validate_phone, "phone", s, VALIDATE_PHONE_MAX, small);
    if (!out) return;
    size_t n = strlen(out);
    CHECK(n >= 12 && n <= 15 && !strncmp(out, "+628", 4) && all_digits(out + 1, n - 1));
    free(out);
}

static void fuzz_name(const char *s, size_t small)
{
    char *out = normalise(validate_name, "name", s, VALIDATE_NAME_MAX, small);
    if (!out) return;
    size_t n = strlen(out);
    CHECK(n >= 2 && n <= strlen(s));
    CHECK(out[0] != ' ' && out[n - 1] != ' ' && !strstr(out, "  "));
    /* strlen(NAME) + 1 always suffices */
    struct validate_error e;
    char *exact = out_buf(strlen(s) + 1);
    garble(&e);
    CHECK(validate_name(s, exact, strlen(s) + 1, &e) == 0 && !strcmp(exact, out));
    free(exact);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int confirm_email = data[0] & 1, confirm_mismatch = (data[0] >> 1) & 1;
    size_t small = 1 + (data[0] >> 2);
    char *s = malloc(size);
    if (!s) abort();
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    fuzz_nik_kk(s);
    fuzz_birth_date(s, confirm_mismatch);
    fuzz_email(s, confirm_email, small);
    fuzz_phone(s, small);
    fuzz_name(s, small);
    struct validate_error e;
    garble(&e);
    check_err(validate_email(NULL, 0, NULL, 0, &e), &e, "email");
    free(s);
    return 0;
}
