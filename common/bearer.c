/* bearer.c: the admin bearer token (see bearer.h). */
#include "antre/bearer.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

int bearer_load(struct bearer *b, const char *path, char *err, size_t errlen)
{
    if (!path[0]) {
        memset(b, 0, sizeof *b);
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[BEARER_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    if (n < BEARER_MIN) {
        snprintf(err, errlen, "%s holds fewer than %d characters", path, BEARER_MIN);
        OPENSSL_cleanse(buf, sizeof buf);
        return -1;
    }
    memcpy(b->token, buf, n);
    b->token[n] = '\0';
    b->len = n;
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

int bearer_allows(const struct bearer *b, const char *value, size_t len)
{
    if (!b->len) return 1;
    if (!value || len < 7 || strncmp(value, "Bearer ", 7) != 0) return 0;
    value += 7;
    len -= 7;
    return len == b->len && CRYPTO_memcmp(value, b->token, len) == 0;
}
