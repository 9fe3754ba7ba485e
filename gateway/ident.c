/* ident.c: owner-marked identifiers (see ident.h). */
#include "ident.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "antre/codec.h"
#include "antre/token.h"
#include "gateway.h"

static int mark(struct gw *gw, const char *kind, const char *rnd, const char *owner, char out[17])
{
    char msg[128];
    uint8_t h[TOKEN_HMAC_BYTES];
    int n = snprintf(msg, sizeof msg, "%s|%.16s|%s", kind, rnd, owner);
    if (n < 0 || (size_t)n >= sizeof msg || token_hmac(gw->keys, msg, (size_t)n, h) < 0) return -1;
    codec_hex_encode(h, 8, out, 17);
    return 0;
}

int ident_valid(const char *id, size_t len)
{
    if (len != IDENT_LEN) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return 0;
    return 1;
}

int ident_new(struct gw *gw, const char *kind, const char *owner, char *out)
{
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1) return -1;
    codec_hex_encode(r, sizeof r, out, 17);
    return mark(gw, kind, out, owner, out + 16);
}

int ident_owned(struct gw *gw, const char *kind, const char *id, size_t len, const char *owner)
{
    char want[17];
    if (!ident_valid(id, len) || mark(gw, kind, id, owner, want) < 0) return 0;
    return CRYPTO_memcmp(want, id + 16, 16) == 0;
}
