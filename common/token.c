/* token.c: signed tokens `v1.<kid>.<payload>.<mac>` (the key file is keyfile.c's).
 *
 * A status poll verifies a ticket and answers from cached state, so verification is the hot path
 * of the waiting room. OpenSSL 3's one-shot HMAC() fetches the algorithm and derives the padded
 * key blocks on every call (about 1.7 us here), and even a re-initialised EVP_MAC_CTX pays the
 * provider layer on every use; instead each key's inner and outer SHA-256 states are computed
 * once at load and copied per MAC (struct hmac_state). One struct token_keys still serves one
 * thread at a time (see token.h).
 *
 * Base64url decoding is strict (codec.h) so that a token has exactly one spelling. */
/* The low-level SHA256_* calls are deprecated in OpenSSL 3 but remain the cheapest way to reuse
 * precomputed HMAC states; see struct hmac_state. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "antre/token.h"

#include "antre/codec.h"
#include "antre/errbuf.h"
#include "antre/log.h"
#include "antre/seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_B64_LEN CODEC_B64URL_LEN(TOKEN_HMAC_BYTES)      /* 43 */
#define PAYLOAD_B64_MAX CODEC_B64URL_LEN(TOKEN_PAYLOAD_MAX) /* 683 */

struct token_key {
    char kid[TOKEN_KID_MAX + 1];
    size_t kidlen;
    struct hmac_state *mac; /* HMAC-SHA256 with both key blocks absorbed */
};

struct token_keys {
    struct token_key *keys; /* keys[0] signs */
    size_t n;
    struct hmac_state *pepper;           /* NULL when the file has no pepper line */
    uint8_t pepper_id[TOKEN_HMAC_BYTES]; /* SHA-256 of the pepper, to compare peppers */
    struct seal_keys *seal;              /* the same key lines' sealing keys (seal.h) */
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        log_error("token: out of memory bytes=%zu", n);
        abort();
    }
    return q;
}

/* ---- HMAC ---- */

/* A context of HMAC keyed with KEY (TOKEN_KEY_BYTES), or NULL when OpenSSL fails. */
/* HMAC-SHA256 with the key's inner and outer blocks absorbed once at load; every MAC then
 * copies the two states (a struct copy) instead of going through EVP_MAC's provider layer, which
 * measured several times dearer per call on OpenSSL 3 (the status poll's main cost). */
struct hmac_state {
    SHA256_CTX inner, outer;
};

static void mac_free(struct hmac_state *c)
{
    if (!c) return;
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static struct hmac_state *mac_new(const uint8_t *key)
{
    struct hmac_state *c = malloc(sizeof *c);
    if (!c) abort();
    uint8_t pad[64];
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < TOKEN_KEY_BYTES; i++) pad[i] ^= key[i];
    SHA256_Init(&c->inner);
    SHA256_Update(&c->inner, pad, sizeof pad);
    memset(pad, 0x5c, sizeof pad);
    for (int i = 0; i < TOKEN_KEY_BYTES; i++) pad[i] ^= key[i];
    SHA256_Init(&c->outer);
    SHA256_Update(&c->outer, pad, sizeof pad);
    OPENSSL_cleanse(pad, sizeof pad);
    return c;
}

static int mac_compute(struct hmac_state *c, const void *msg, size_t len,
                       uint8_t out[TOKEN_HMAC_BYTES])
{
    /* HMAC(K, m) = H((K^opad) || H((K^ipad) || m)), both key blocks absorbed at load. */
    SHA256_CTX h = c->inner;
    uint8_t inner[SHA256_DIGEST_LENGTH];
    SHA256_Update(&h, msg, len);
    SHA256_Final(inner, &h);
    h = c->outer;
    SHA256_Update(&h, inner, sizeof inner);
    SHA256_Final(out, &h);
    OPENSSL_cleanse(&h, sizeof h);
    return 0;
}

/* ---- keys ---- */

void token_keys_free(struct token_keys *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) mac_free(k->keys[i].mac);
    free(k->keys);
    mac_free(k->pepper);
    seal_keys_free(k->seal);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

const char *token_keys_signing_kid(const struct token_keys *k) { return k->keys[0].kid; }

size_t token_keys_count(const struct token_keys *k) { return k->n; }

const struct seal_keys *token_keys_seal(const struct token_keys *k) { return k->seal; }

int token_keys_has_pepper(const struct token_keys *k) { return k->pepper != NULL; }

int token_keys_pepper_equal(const struct token_keys *a, const struct token_keys *b)
{
    if (!a->pepper || !b->pepper) return !a->pepper && !b->pepper;
    return CRYPTO_memcmp(a->pepper_id, b->pepper_id, sizeof a->pepper_id) == 0;
}

int token_keys_load(const char *path, struct token_keys **out, char *err, size_t errlen)
{
    struct keyfile kf;
    *out = NULL;
    if (keyfile_load(path, &kf, err, errlen) < 0) return -1;

    struct token_keys *k = xrealloc(NULL, sizeof *k);
    memset(k, 0, sizeof *k);
    k->keys = xrealloc(NULL, kf.n * sizeof *k->keys);
    for (size_t i = 0; i < kf.n; i++) {
        struct token_key *tk = &k->keys[i];
        memset(tk, 0, sizeof *tk);
        memcpy(tk->kid, kf.keys[i].kid, sizeof tk->kid);
        tk->kidlen = kf.keys[i].kidlen;
        tk->mac = mac_new(kf.keys[i].key);
        k->n++;
    }
    int rc = 0;
    /* The sealing keys are derived now: the raw key bytes are wiped below. */
    if (!(k->seal = seal_keys_new(&kf, err, errlen))) rc = -1;
    if (kf.has_pepper) {
        k->pepper = mac_new(kf.pepper);
        if (!EVP_Digest(kf.pepper, sizeof kf.pepper, k->pepper_id, NULL, EVP_sha256(), NULL)) {
            errbuf_set(err, errlen, "%s: OpenSSL could not hash the pepper", path);
            rc = -1;
        }
    }
    keyfile_clear(&kf);
    if (rc < 0) {
        token_keys_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

/* ---- tokens ---- */

int token_sign(const struct token_keys *k, const void *payload, size_t len, char *out,
               size_t outlen)
{
    if (out && outlen > 0) out[0] = '\0';
    if (!k || !payload || !out || len == 0 || len > TOKEN_PAYLOAD_MAX) return -1;
    const struct token_key *key = &k->keys[0];
    size_t total = TOKEN_LEN(key->kidlen, len);
    if (outlen < total + 1) return -1;

    char *p = out;
    memcpy(p, "v1.", 3);
    p += 3;
    memcpy(p, key->kid, key->kidlen);
    p += key->kidlen;
    *p++ = '.';
    p += codec_b64url_encode(payload, len, p, outlen - (size_t)(p - out));
    uint8_t mac[TOKEN_HMAC_BYTES];
    if (mac_compute(key->mac, out, (size_t)(p - out), mac) < 0) {
        out[0] = '\0';
        return -1;
    }
    *p++ = '.';
    p += codec_b64url_encode(mac, sizeof mac, p, outlen - (size_t)(p - out));
    return (int)(p - out);
}

int token_verify(const struct token_keys *k, const char *tok, size_t toklen, void *payload,
                 size_t payload_cap, size_t *payload_len)
{
    if (toklen > TOKEN_MAX_LEN) return TOKEN_TOO_LARGE;
    if (!tok || toklen == 0) return TOKEN_MALFORMED;

    /* Four non-empty parts: version, kid, payload, mac. */
    const char *end = tok + toklen;
    const char *d1 = memchr(tok, '.', toklen);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    const char *d3 = d2 ? memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) : NULL;
    if (!d3 || memchr(d3 + 1, '.', (size_t)(end - d3 - 1))) return TOKEN_MALFORMED;
    if (d1 == tok || d2 == d1 + 1 || d3 == d2 + 1 || d3 + 1 == end) return TOKEN_MALFORMED;

    if (d1 - tok != 2 || tok[0] != 'v' || tok[1] != '1') return TOKEN_BAD_VERSION;

    const char *kid = d1 + 1;
    size_t kidlen = (size_t)(d2 - kid);
    if (!keyfile_kid_valid(kid, kidlen)) return TOKEN_MALFORMED;

    const char *pl64 = d2 + 1;
    size_t pl64len = (size_t)(d3 - pl64);
    if (pl64len > PAYLOAD_B64_MAX) return TOKEN_TOO_LARGE;
    uint8_t body[TOKEN_PAYLOAD_MAX];
    ssize_t bodylen = codec_b64url_decode(pl64, pl64len, body, sizeof body);
    if (bodylen < 0) return TOKEN_MALFORMED;

    const char *mac64 = d3 + 1;
    uint8_t got[TOKEN_HMAC_BYTES];
    if ((size_t)(end - mac64) != MAC_B64_LEN ||
        codec_b64url_decode(mac64, MAC_B64_LEN, got, sizeof got) != TOKEN_HMAC_BYTES)
        return TOKEN_MALFORMED;

    const struct token_key *key = NULL;
    for (size_t i = 0; i < k->n; i++) {
        if (k->keys[i].kidlen == kidlen && memcmp(k->keys[i].kid, kid, kidlen) == 0) {
            key = &k->keys[i];
            break;
        }
    }
    if (!key) return TOKEN_UNKNOWN_KEY;

    uint8_t want[TOKEN_HMAC_BYTES];
    if (mac_compute(key->mac, tok, (size_t)(d3 - tok), want) < 0) return TOKEN_BAD_SIGNATURE;
    if (CRYPTO_memcmp(got, want, sizeof want) != 0) return TOKEN_BAD_SIGNATURE;

    if (payload) {
        if ((size_t)bodylen > payload_cap) return TOKEN_TOO_LARGE;
        memcpy(payload, body, (size_t)bodylen);
    }
    if (payload_len) *payload_len = (size_t)bodylen;
    return 0;
}

const char *token_error_str(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case TOKEN_MALFORMED: return "malformed";
    case TOKEN_BAD_VERSION: return "bad version";
    case TOKEN_UNKNOWN_KEY: return "unknown key";
    case TOKEN_BAD_SIGNATURE: return "bad signature";
    case TOKEN_TOO_LARGE: return "too large";
    default: return "unknown error";
    }
}

int token_hmac(const struct token_keys *k, const void *msg, size_t len,
               uint8_t out[TOKEN_HMAC_BYTES])
{
    if (!k->pepper) {
        memset(out, 0, TOKEN_HMAC_BYTES);
        return -1;
    }
    if (mac_compute(k->pepper, msg, len, out) < 0) {
        memset(out, 0, TOKEN_HMAC_BYTES);
        return -1;
    }
    return 0;
}
