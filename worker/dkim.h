/* dkim.h: DKIM signatures of the worker's emails with libopendkim (see dkim.c). */
#ifndef WORKER_DKIM_H
#define WORKER_DKIM_H

#include <stddef.h>

struct dkim_signer; /* opaque */

/* A signer for DOMAIN (d=) and SELECTOR (s=) with the PEM RSA private key of KEY_FILE (read now,
 * at most 16 KiB; blocks). Returns it (free with dkim_signer_free) or NULL with the reason in
 * ERR (the key's bytes are never quoted). */
struct dkim_signer *dkim_signer_new(const char *domain, const char *selector, const char *key_file,
                                    char *err, size_t errlen);

/* The DKIM-Signature header of MSG (LEN bytes, CRLF line ends, headers and body), rsa-sha256,
 * relaxed/relaxed, as one folded header ending in CRLF, to be put before the message. Free with
 * free(). NULL with the reason in ERR when libopendkim fails. */
char *dkim_signer_sign(struct dkim_signer *s, const char *msg, size_t len, char *err,
                       size_t errlen);

/* Wipe the key and free S. NULL is fine. */
void dkim_signer_free(struct dkim_signer *s);

#endif
