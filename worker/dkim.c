/* dkim.c: DKIM signing with libopendkim ([smtp] dkim_domain, dkim_selector, dkim_key_file).
 *
 * One library handle and one key per process; each message gets its own signing handle:
 * dkim_sign (rsa-sha256, relaxed header and body canonicalisation, the library's default list
 * of headers to sign: From, To, Subject, Date, Message-ID, MIME-Version, Content-Type, ...), the
 * message fed as one chunk, dkim_eom, then the header with dkim_getsighdr_d. The message must
 * already have its final bytes (CRLF line ends): the SMTP client sends it as it is. */
#include "dkim.h"

#include <errno.h>
#include <opendkim/dkim.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX (16 * 1024)
#define HEADER_NAME "DKIM-Signature"

struct dkim_signer {
    DKIM_LIB *lib;
    char domain[256], selector[64];
    unsigned char *key; /* PEM, NUL-terminated */
    size_t keylen;
};

struct dkim_signer *dkim_signer_new(const char *domain, const char *selector, const char *key_file,
                                    char *err, size_t errlen)
{
    if (!domain[0] || !selector[0] || strlen(domain) >= 256 || strlen(selector) >= 64) {
        snprintf(err, errlen, "dkim: dkim_domain and dkim_selector are needed with a key");
        return NULL;
    }
    FILE *f = fopen(key_file, "rb");
    if (!f) {
        snprintf(err, errlen, "dkim: %s: %s", key_file, strerror(errno));
        return NULL;
    }
    struct dkim_signer *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->key = malloc(KEY_MAX + 1);
    if (!s->key) abort();
    s->keylen = fread(s->key, 1, KEY_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || s->keylen == 0 || s->keylen > KEY_MAX) {
        snprintf(err, errlen, "dkim: %s: %s", key_file,
                 bad         ? "read error"
                 : s->keylen ? "larger than 16 KiB"
                             : "empty");
        dkim_signer_free(s);
        return NULL;
    }
    s->key[s->keylen] = 0;
    snprintf(s->domain, sizeof s->domain, "%s", domain);
    snprintf(s->selector, sizeof s->selector, "%s", selector);
    s->lib = dkim_init(NULL, NULL);
    if (!s->lib) {
        snprintf(err, errlen, "dkim: libopendkim cannot start");
        dkim_signer_free(s);
        return NULL;
    }
    /* A first signature now: a key libopendkim cannot use is refused at start, not per mail. */
    static const char probe[] = "From: <a@b>\r\n\r\nx\r\n";
    char *h = dkim_signer_sign(s, probe, sizeof probe - 1, err, errlen);
    if (!h) {
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0, " (%s)", key_file);
        dkim_signer_free(s);
        return NULL;
    }
    free(h);
    return s;
}

char *dkim_signer_sign(struct dkim_signer *s, const char *msg, size_t len, char *err, size_t errlen)
{
    DKIM_STAT st;
    DKIM *d = dkim_sign(s->lib, (const unsigned char *)"antre", NULL, s->key,
                        (const unsigned char *)s->selector, (const unsigned char *)s->domain,
                        DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
    if (!d) {
        snprintf(err, errlen, "dkim: cannot sign: %s", dkim_getresultstr(st));
        return NULL;
    }
    unsigned char *hdr = NULL;
    size_t hlen = 0;
    st = dkim_chunk(d, (unsigned char *)msg, len);
    if (st == DKIM_STAT_OK) st = dkim_chunk(d, NULL, 0);
    if (st == DKIM_STAT_OK) st = dkim_eom(d, NULL);
    if (st == DKIM_STAT_OK) st = dkim_getsighdr_d(d, strlen(HEADER_NAME) + 2, &hdr, &hlen);
    if (st != DKIM_STAT_OK) {
        snprintf(err, errlen, "dkim: cannot sign: %s", dkim_getresultstr(st));
        dkim_free(d);
        return NULL;
    }
    /* The value is folded with bare LF: every line end becomes CRLF. */
    size_t cap = strlen(HEADER_NAME) + 2 + 2 * hlen + 3, o = 0;
    char *out = malloc(cap);
    if (!out) abort();
    o += (size_t)snprintf(out, cap, "%s: ", HEADER_NAME);
    for (size_t i = 0; i < hlen; i++) {
        if (hdr[i] == '\r') continue;
        if (hdr[i] == '\n') out[o++] = '\r';
        out[o++] = (char)hdr[i];
    }
    out[o++] = '\r';
    out[o++] = '\n';
    out[o] = 0;
    dkim_free(d);
    return out;
}

void dkim_signer_free(struct dkim_signer *s)
{
    if (!s) return;
    if (s->lib) dkim_close(s->lib);
    if (s->key) {
        OPENSSL_cleanse(s->key, KEY_MAX + 1);
        free(s->key);
    }
    free(s);
}
