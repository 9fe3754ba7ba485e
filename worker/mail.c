/* mail.c: the verification code's email and SMS text (see mail.h).
 *
 * Templates: [smtp] templates_dir holds, per language (id, en), verify-code.LANG.subject (one
 * line), .txt (the plain text), .html (the HTML alternative) and .sms. They may use {{code}},
 * {{programme}} and {{minutes}}; in .html the values are HTML-escaped, elsewhere they are put in
 * as they are. Any other {{name}} is refused at load, with the file's name.
 *
 * What keeps the message out of spam folders, and is tested (tests/unit/test_mail.c):
 *   - Date, Message-ID on the sender's domain, From with a display name, To, Subject;
 *   - MIME-Version and multipart/alternative: text/plain and text/html, both charset=UTF-8,
 *     quoted-printable (so no line is longer than MAIL_LINE_MAX, and 8-bit text survives);
 *   - Auto-Submitted: auto-generated (RFC 3834) and X-Auto-Response-Suppress: no auto-replies;
 *   - CRLF line ends everywhere (DKIM signs exactly these bytes: dkim.c).
 * Non-ASCII subjects and display names are RFC 2047 encoded-words (base64, UTF-8). */
#include "mail.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antre/codec.h"

#define TEMPLATE_MAX (64 * 1024)
#define QP_LINE 76

enum part { P_SUBJECT, P_TXT, P_HTML, P_SMS, P__N };
static const char *const part_ext[P__N] = {"subject", "txt", "html", "sms"};
static const char *const langs[] = {"id", "en"};
#define NLANGS 2

struct mail_templates {
    char *text[NLANGS][P__N];
};

/* A growing buffer; memory exhaustion aborts. */
struct buf {
    char *p;
    size_t len, cap;
};

static void add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = malloc(cap);
        if (!p) abort();
        if (b->p) {
            memcpy(p, b->p, b->len);
            OPENSSL_cleanse(b->p, b->cap); /* it may hold the code */
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void adds(struct buf *b, const char *s) { add(b, s, strlen(s)); }

static void bfree(struct buf *b)
{
    if (b->p) OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void mail_free(char *s, size_t len)
{
    if (!s) return;
    OPENSSL_cleanse(s, len ? len : strlen(s));
    free(s);
}

static const char *const names[] = {"code", "programme", "minutes"};
#define NNAMES 3

/* The index of the name between P and END (spaces around it allowed), or -1. */
static int name_at(const char *p, const char *end)
{
    while (p < end && *p == ' ') p++;
    while (end > p && end[-1] == ' ') end--;
    for (int i = 0; i < NNAMES; i++)
        if ((size_t)(end - p) == strlen(names[i]) && !memcmp(p, names[i], (size_t)(end - p)))
            return i;
    return -1;
}

static void add_html(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': adds(b, "&amp;"); break;
        case '<': adds(b, "&lt;"); break;
        case '>': adds(b, "&gt;"); break;
        case '"': adds(b, "&quot;"); break;
        case '\'': adds(b, "&#39;"); break;
        default: add(b, s, 1);
        }
    }
}

/* TEXT with its {{names}} replaced by VALS (HTML-escaped when HTML) into B. -1 at the first
 * unknown name (or unclosed braces), with its line in *LINE. */
static int render(const char *text, const char *const *vals, int html, struct buf *b, int *line)
{
    *line = 1;
    for (const char *p = text; *p;) {
        const char *open = strstr(p, "{{");
        const char *stop = open ? open : p + strlen(p);
        for (const char *q = p; q < stop; q++) *line += *q == '\n';
        if (b) add(b, p, (size_t)(stop - p));
        if (!open) break;
        const char *close = strstr(open + 2, "}}");
        int i = close ? name_at(open + 2, close) : -1;
        if (i < 0) return -1;
        if (b) {
            if (html) add_html(b, vals[i]);
            else adds(b, vals[i]);
        }
        p = close + 2;
    }
    return 0;
}

struct mail_templates *mail_templates_load(const char *dir, char *err, size_t errlen)
{
    struct mail_templates *t = calloc(1, sizeof *t);
    if (!t) abort();
    for (int l = 0; l < NLANGS; l++)
        for (int k = 0; k < P__N; k++) {
            char path[1100];
            snprintf(path, sizeof path, "%s/verify-code.%s.%s", dir, langs[l], part_ext[k]);
            FILE *f = fopen(path, "rb");
            if (!f) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                mail_templates_free(t);
                return NULL;
            }
            char *s = malloc(TEMPLATE_MAX + 1);
            if (!s) abort();
            size_t n = fread(s, 1, TEMPLATE_MAX + 1, f);
            int bad = ferror(f);
            fclose(f);
            s[n > TEMPLATE_MAX ? TEMPLATE_MAX : n] = 0;
            t->text[l][k] = s;
            int line = 0;
            const char *why = bad                ? "read error"
                              : n > TEMPLATE_MAX ? "larger than 64 KiB"
                              : memchr(s, 0, n)  ? "holds a NUL byte"
                              : render(s, NULL, 0, NULL, &line) < 0
                                  ? "unknown {{name}} (code, programme, minutes)"
                                  : NULL;
            if (why) {
                if (line) snprintf(err, errlen, "%s:%d: %s", path, line, why);
                else snprintf(err, errlen, "%s: %s", path, why);
                mail_templates_free(t);
                return NULL;
            }
        }
    return t;
}

void mail_templates_free(struct mail_templates *t)
{
    if (!t) return;
    for (int l = 0; l < NLANGS; l++)
        for (int k = 0; k < P__N; k++) free(t->text[l][k]);
    free(t);
}

static int lang_index(const char *lang) { return lang && !strcmp(lang, "en") ? 1 : 0; }

/* The template K in F's language, rendered; trailing line ends removed when TRIM. */
static void render_part(const struct mail_templates *t, const struct mail_fields *f, int k,
                        int trim, struct buf *b)
{
    char minutes[16];
    snprintf(minutes, sizeof minutes, "%d", f->minutes);
    const char *vals[NNAMES] = {f->code, f->programme, minutes};
    int line;
    render(t->text[lang_index(f->lang)][k], vals, k == P_HTML, b, &line);
    if (!b->p) adds(b, "");
    while (trim && b->len && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == '\r'))
        b->p[--b->len] = 0;
}

/* TEXT (any line ends) as quoted-printable with CRLF line ends and soft breaks into B. */
static void add_qp(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r' && i + 1 < n && s[i + 1] == '\n') continue;
        if (ch == '\n' || ch == '\r') {
            adds(b, "\r\n");
            col = 0;
            continue;
        }
        int at_end = i + 1 == n || s[i + 1] == '\n' || s[i + 1] == '\r';
        char enc[3];
        size_t el = 1;
        enc[0] = (char)ch;
        if ((ch < 33 && !((ch == ' ' || ch == '\t') && !at_end)) || ch > 126 || ch == '=') {
            enc[0] = '=';
            enc[1] = hex[ch >> 4];
            enc[2] = hex[ch & 15];
            el = 3;
        }
        /* a soft break ("=" CRLF) keeps every line at most QP_LINE bytes, the "=" included */
        if (col + el > QP_LINE - 1 && !(at_end && col + el <= QP_LINE)) {
            adds(b, "=\r\n");
            col = 0;
        }
        add(b, enc, el);
        col += el;
    }
    if (col) adds(b, "\r\n");
}

static int is_ascii_plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
    return 1;
}

static int has_ctl(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* S as RFC 2047 encoded-words (UTF-8, base64), folded so that no line passes MAIL_LINE_MAX. */
static void add_encoded_words(struct buf *b, const char *s, size_t col)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        /* 30 bytes of text make 40 of base64, 52 with the =?UTF-8?B?...?= around them; a
         * chunk never ends inside a UTF-8 character */
        size_t take = n - i < 30 ? n - i : 30;
        while (take > 1 && i + take < n && ((unsigned char)s[i + take] & 0xC0) == 0x80) take--;
        char enc[64];
        EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)s + i, (int)take);
        if (i && col + strlen(enc) + 13 > MAIL_LINE_MAX) {
            adds(b, "\r\n");
            col = 0;
        }
        adds(b, i ? " =?UTF-8?B?" : "=?UTF-8?B?");
        adds(b, enc);
        adds(b, "?=");
        col += strlen(enc) + 13;
        i += take;
    }
}

static void add_header_text(struct buf *b, const char *name, const char *v)
{
    adds(b, name);
    adds(b, ": ");
    if (is_ascii_plain(v) && strlen(name) + 2 + strlen(v) <= MAIL_LINE_MAX) adds(b, v);
    else add_encoded_words(b, v, strlen(name) + 2);
    adds(b, "\r\n");
}

char *mail_compose(const struct mail_templates *t, const struct mail_fields *f, size_t *len)
{
    if (has_ctl(f->from) || has_ctl(f->to) || has_ctl(f->sender_name) || has_ctl(f->programme) ||
        !f->from || !f->to || strchr(f->to, '>') || strchr(f->from, '>'))
        return NULL;
    struct buf b = {0}, subject = {0}, txt = {0}, html = {0};
    render_part(t, f, P_SUBJECT, 1, &subject);
    for (size_t i = 0; i < subject.len; i++)
        if (subject.p[i] == '\r' || subject.p[i] == '\n') subject.p[i] = ' ';
    render_part(t, f, P_TXT, 0, &txt);
    render_part(t, f, P_HTML, 0, &html);

    uint8_t rnd[12];
    char id[25], date[64];
    if (RAND_bytes(rnd, sizeof rnd) != 1 || codec_hex_encode(rnd, sizeof rnd, id, sizeof id) < 0)
        abort();
    time_t now = (time_t)f->now_s;
    struct tm tm;
    gmtime_r(&now, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    const char *at = strrchr(f->from, '@');
    const char *domain = at && at[1] ? at + 1 : "localhost";
    char line[600];

    snprintf(line, sizeof line, "Date: %s\r\n", date);
    adds(&b, line);
    const char *name = f->sender_name && f->sender_name[0] ? f->sender_name : f->programme;
    if (name && name[0] && is_ascii_plain(name) && !strpbrk(name, "\"\\")) {
        snprintf(line, sizeof line, "From: \"%s\" <%s>\r\n", name, f->from);
        adds(&b, line);
    } else if (name && name[0]) {
        adds(&b, "From: ");
        add_encoded_words(&b, name, 6);
        snprintf(line, sizeof line, "\r\n <%s>\r\n", f->from);
        adds(&b, line);
    } else {
        snprintf(line, sizeof line, "From: <%s>\r\n", f->from);
        adds(&b, line);
    }
    snprintf(line, sizeof line, "To: <%s>\r\n", f->to);
    adds(&b, line);
    add_header_text(&b, "Subject", subject.p);
    snprintf(line, sizeof line, "Message-ID: <%s.%lld@%s>\r\n", id, (long long)f->now_s, domain);
    adds(&b, line);
    adds(&b, "MIME-Version: 1.0\r\n");
    snprintf(line, sizeof line,
             "Content-Type: multipart/alternative;\r\n boundary=\"=_antre_%s\"\r\n", id);
    adds(&b, line);
    adds(&b, "Auto-Submitted: auto-generated\r\n");
    adds(&b, "X-Auto-Response-Suppress: All\r\n");
    snprintf(line, sizeof line, "Content-Language: %s\r\n", lang_index(f->lang) ? "en" : "id");
    adds(&b, line);
    adds(&b, "\r\n");
    static const char *const types[] = {"text/plain", "text/html"};
    struct buf *parts[] = {&txt, &html};
    for (int i = 0; i < 2; i++) {
        snprintf(line, sizeof line,
                 "--=_antre_%s\r\nContent-Type: %s; charset=UTF-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                 id, types[i]);
        adds(&b, line);
        add_qp(&b, parts[i]->p, parts[i]->len);
    }
    snprintf(line, sizeof line, "--=_antre_%s--\r\n", id);
    adds(&b, line);
    bfree(&subject);
    bfree(&txt);
    bfree(&html);
    *len = b.len;
    return b.p;
}

char *mail_sms_text(const struct mail_templates *t, const struct mail_fields *f)
{
    struct buf b = {0};
    render_part(t, f, P_SMS, 1, &b);
    return b.p;
}
