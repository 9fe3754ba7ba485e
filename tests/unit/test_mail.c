/* test_mail.c: the verification email's composition (worker/mail.c), the SMS body
 * (verify_sms_body) and DKIM signing (worker/dkim.c), with the shipped templates of
 * conf/templates and a key made with openssl. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/dkim.h"
#include "../../worker/mail.h"
#include "../../worker/verify.h"
#include "tmpdir.h"

static char dir[TMPDIR_LEN];
static void setup(void) { tmpdir_make(dir, "mail"); }
static void teardown(void) { tmpdir_remove(dir); }

static struct mail_templates *shipped(void)
{
    char err[512];
    struct mail_templates *t = mail_templates_load("conf/templates", err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    return t;
}

static struct mail_fields fields(const char *lang, const char *programme)
{
    return (struct mail_fields){.lang = lang,
                                .code = "048213",
                                .programme = programme,
                                .sender_name = programme,
                                .from = "noreply@daftar.example.test",
                                .to = "siti@example.test",
                                .minutes = 10,
                                .now_s = 1796342400}; /* Fri, 04 Dec 2026 00:00:00 +0000 */
}

/* Every line ends in CRLF and is at most MAIL_LINE_MAX bytes. */
static void check_lines(const char *m, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (m[i] == '\n') {
            cr_assert(i > 0 && m[i - 1] == '\r', "bare LF at %zu", i);
            cr_assert_leq(i - 1 - start, MAIL_LINE_MAX, "line of %zu bytes: %.*s", i - 1 - start,
                          (int)(i - 1 - start), m + start);
            start = i + 1;
        } else cr_assert(m[i] != '\r' || (i + 1 < len && m[i + 1] == '\n'), "bare CR");
    }
    cr_assert_eq(start, len, "the message ends with CRLF");
}

/* The header NAME's line (unfolded first line), or NULL. */
static const char *header(const char *m, const char *name)
{
    size_t n = strlen(name);
    const char *end = strstr(m, "\r\n\r\n");
    for (const char *p = m; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
        if (!strncmp(p, name, n) && p[n] == ':') return p;
    return NULL;
}

TestSuite(mail, .init = setup, .fini = teardown);

Test(mail, headers_and_lines_in_both_languages)
{
    struct mail_templates *t = shipped();
    static const char *const subjects[] = {"Subject: Kode verifikasi Beasiswa Kota: 048213",
                                           "Subject: Your Beasiswa Kota verification code: 048213"};
    for (int l = 0; l < 2; l++) {
        struct mail_fields f = fields(l ? "en" : "id", "Beasiswa Kota");
        size_t len;
        char *m = mail_compose(t, &f, &len);
        cr_assert_not_null(m);
        cr_assert_eq(strlen(m), len);
        check_lines(m, len);
        cr_assert_not_null(header(m, "Date"));
        cr_assert(!strncmp(header(m, "Date"), "Date: Fri, 04 Dec 2026 00:00:00 +0000\r\n", 39));
        cr_assert_not_null(strstr(header(m, "Message-ID"), "@daftar.example.test>\r\n"));
        cr_assert(!strncmp(header(m, "MIME-Version"), "MIME-Version: 1.0\r\n", 19));
        cr_assert(!strncmp(header(m, "Auto-Submitted"), "Auto-Submitted: auto-generated\r\n", 32));
        cr_assert(!strncmp(header(m, "From"),
                           "From: \"Beasiswa Kota\" <noreply@daftar.example.test>\r\n", 52));
        cr_assert(!strncmp(header(m, "To"), "To: <siti@example.test>\r\n", 25));
        cr_assert(!strncmp(header(m, "Subject"), subjects[l], strlen(subjects[l])));
        cr_assert_not_null(
            strstr(header(m, "Content-Type"), "multipart/alternative;\r\n boundary="));
        cr_assert_not_null(strstr(m, "Content-Type: text/plain; charset=UTF-8\r\n"));
        cr_assert_not_null(strstr(m, "Content-Type: text/html; charset=UTF-8\r\n"));
        cr_assert_not_null(strstr(m, l ? "valid for 10 minutes" : "berlaku 10 menit"));
        mail_free(m, len);
    }
    mail_templates_free(t);
}

Test(mail, values_are_escaped_in_html_only_and_long_or_foreign_text_is_encoded)
{
    struct mail_templates *t = shipped();
    const char *name = "Beasiswa Pendidikan & Pelatihan Kota Bandung untuk Siswa Berprestasi "
                       "\xC3\xA9\xC3\xA9 Tahun Ajaran 2026/2027";
    struct mail_fields f = fields("id", name);
    size_t len;
    char *m = mail_compose(t, &f, &len);
    cr_assert_not_null(m);
    check_lines(m, len);
    cr_assert(!strncmp(header(m, "Subject"), "Subject: =?UTF-8?B?", 19));
    cr_assert(!strncmp(header(m, "From"), "From: =?UTF-8?B?", 16));
    cr_assert_not_null(strstr(m, "&amp; Pelatihan"), "escaped in HTML");
    cr_assert_not_null(strstr(m, "Pendidikan & Pelatihan"), "as it is in the text");
    cr_assert_not_null(strstr(m, "=C3=A9"), "8-bit text is quoted-printable");
    mail_free(m, len);
    mail_templates_free(t);
}

Test(mail, a_field_with_a_line_break_is_refused)
{
    struct mail_templates *t = shipped();
    struct mail_fields f = fields("en", "X");
    f.to = "a@example.test\r\nBcc: b@example.test";
    size_t len;
    cr_assert_null(mail_compose(t, &f, &len));
    f.to = "a@example.test";
    f.sender_name = "X\nY";
    cr_assert_null(mail_compose(t, &f, &len));
    mail_templates_free(t);
}

Test(mail, unknown_names_and_missing_files_are_refused_at_load)
{
    static const char *const exts[] = {"subject", "txt", "html", "sms"};
    char name[64], err[512];
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "verify-code.%s.%s", l ? "en" : "id", exts[k]);
            tmpdir_write(dir, name, "{{code}} {{programme}} {{minutes}}\n", 0644);
        }
    struct mail_templates *t = mail_templates_load(dir, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    struct mail_fields f = fields("en", "P");
    char *s = mail_sms_text(t, &f);
    cr_assert_str_eq(s, "048213 P 10");
    mail_free(s, 0);
    mail_templates_free(t);
    tmpdir_write(dir, "verify-code.en.txt", "line\n{{kode}}\n", 0644);
    cr_assert_null(mail_templates_load(dir, err, sizeof err));
    cr_assert_not_null(strstr(err, "verify-code.en.txt:2: unknown"), "%s", err);
    char path[128];
    snprintf(path, sizeof path, "%s/verify-code.id.sms", dir);
    unlink(path);
    cr_assert_null(mail_templates_load(dir, err, sizeof err));
    cr_assert_not_null(strstr(err, "verify-code.id.sms"), "%s", err);
}

Test(mail, quoted_printable_lines_are_short_and_decode_back)
{
    char name[64], err[512], text[700];
    memset(text, 'x', 300);
    strcpy(text + 300, " = \xC3\xA9 {{code}} \n");
    static const char *const exts[] = {"subject", "txt", "html", "sms"};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "verify-code.%s.%s", l ? "en" : "id", exts[k]);
            tmpdir_write(dir, name, k == 1 ? text : "s\n", 0644);
        }
    struct mail_templates *t = mail_templates_load(dir, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    struct mail_fields f = fields("id", "P");
    size_t len;
    char *m = mail_compose(t, &f, &len);
    check_lines(m, len);
    /* decode the text part */
    const char *p = strstr(strstr(m, "text/plain"), "\r\n\r\n") + 4;
    const char *end = strstr(p, "\r\n--=_antre_");
    char out[800];
    size_t o = 0;
    while (p < end) {
        if (p[0] == '=' && p[1] == '\r') p += 3;
        else if (p[0] == '=') {
            char h[3] = {p[1], p[2], 0};
            out[o++] = (char)strtol(h, NULL, 16);
            p += 3;
        } else out[o++] = *p++;
    }
    out[o] = 0;
    char want[700];
    memcpy(want, text, 300);
    strcpy(want + 300, " = \xC3\xA9 048213 ");
    cr_assert_str_eq(out, want);
    mail_free(m, len);
    mail_templates_free(t);
}

Test(mail, sms_body_is_json_with_escaped_values)
{
    char *b =
        verify_sms_body("{\"to\":\"{{number}}\",\"text\":\"{{text}}\",\"ref\":\"{{reference}}\"}",
                        "+62 812", "say \"hi\"\n\\", "abc");
    json_error_t e;
    json_t *doc = json_loads(b, 0, &e);
    cr_assert_not_null(doc, "%s: %s", b, e.text);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "to")), "+62 812");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "text")), "say \"hi\"\n\\");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "ref")), "abc");
    json_decref(doc);
    free(b);
}

Test(mail, dkim_signature_header)
{
    char key[128], cmd[300], err[512];
    snprintf(key, sizeof key, "%s/k.pem", dir);
    snprintf(cmd, sizeof cmd, "openssl genrsa -out %s 2048 2>/dev/null", key);
    cr_assert_eq(system(cmd), 0);
    struct dkim_signer *s = dkim_signer_new("example.test", "sel", key, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    struct mail_templates *t = shipped();
    struct mail_fields f = fields("en", "P");
    size_t len;
    char *m = mail_compose(t, &f, &len);
    char *h = dkim_signer_sign(s, m, len, err, sizeof err);
    cr_assert_not_null(h, "%s", err);
    cr_assert(!strncmp(h, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;",
                       69),
              "%s", h);
    cr_assert_not_null(strstr(h, "s=sel;"));
    check_lines(h, strlen(h));
    free(h);
    mail_free(m, len);
    mail_templates_free(t);
    dkim_signer_free(s);
    tmpdir_write(dir, "bad.pem", "not a key\n", 0600);
    snprintf(key, sizeof key, "%s/bad.pem", dir);
    cr_assert_null(dkim_signer_new("example.test", "sel", key, err, sizeof err));
}
