/* mail.h: the verification code's message: the email (headers, plain text with an HTML
 * alternative, quoted-printable, CRLF) and the SMS text, from the templates of
 * [smtp] templates_dir (see mail.c for the files and their names). */
#ifndef WORKER_MAIL_H
#define WORKER_MAIL_H

#include <stddef.h>
#include <stdint.h>

struct mail_templates; /* opaque */

#define MAIL_LINE_MAX 78 /* longest line mail_compose writes, CRLF excluded (RFC 5322 asks 78) */

/* What one message says and to whom. Every string is borrowed; none may hold CR or LF. */
struct mail_fields {
    const char *lang;        /* "id" or "en" (anything else: "id") */
    const char *code;        /* the code, digits */
    const char *programme;   /* [programme] name */
    const char *sender_name; /* From's display name ([programme] sender_name, or name) */
    const char *from;        /* the sender's address */
    const char *to;          /* the recipient's address (for SMS: unused) */
    int minutes;             /* the code's life left, in whole minutes */
    int64_t now_s;           /* Unix seconds: Date and Message-ID */
};

/* Load and check the templates of DIR: verify-code.LANG.subject, .txt, .html and .sms for LANG
 * id and en (each at most 64 KiB; names allowed: {{code}}, {{programme}}, {{minutes}}). Returns
 * them (free with mail_templates_free) or NULL with "path: reason" in ERR. Blocks (file I/O). */
struct mail_templates *mail_templates_load(const char *dir, char *err, size_t errlen);

/* Free T (NULL is fine). */
void mail_templates_free(struct mail_templates *t);

/* The whole email (headers and body, CRLF line ends, no line over MAIL_LINE_MAX bytes), or NULL
 * when a field holds a control character. Its length in *LEN. Free with mail_free (it holds the
 * code: the memory is wiped). */
char *mail_compose(const struct mail_templates *t, const struct mail_fields *f, size_t *len);

/* The SMS text (NUL-terminated), free with mail_free. */
char *mail_sms_text(const struct mail_templates *t, const struct mail_fields *f);

/* Wipe and free S (LEN bytes; NUL-terminated when LEN is 0). NULL is fine. */
void mail_free(char *s, size_t len);

#endif
