/* seal.c: AES-256-GCM of personal fields at rest (see seal.h for the format, the keys and what a
 * sealed value is bound to).
 *
 * Why GCM with a random nonce: every value gets a fresh 96-bit nonce, so one key may seal about
 * 2^32 values before a nonce collision becomes a risk worth counting; a registration wave seals
 * six values per applicant, far below that, and rotation starts a fresh key anyway. The sealed
 * length reveals the clear length (as a field's normalised form would anyway); no padding.
 *
 * Why the kid is inside the additional data as well as in the prefix: changing the prefix to
 * another kid of the same file must not make a value open under a key it was not sealed with
 * (it would fail the tag anyway; binding it says so plainly). */
#include "antre/seal.h"

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/errbuf.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "s1."
#define PREFIX_LEN 3
#define HKDF_SALT "antre-seal"
#define HKDF_INFO "antre seal v1 aes-256-gcm"
#define AAD_MAX 256 /* "s1" kid record-id field, NUL-separated */
#define RAW_MAX (SEAL_NONCE_BYTES + SEAL_PLAIN_MAX + SEAL_TAG_BYTES)

struct seal_key {
    char kid[KEYFILE_KID_MAX + 1];
    size_t kidlen;
    uint8_t key[SEAL_KEY_BYTES];
};

struct seal_keys {
    struct seal_key *keys; /* keys[0] seals */
    size_t n;
};

/* HKDF-SHA256 of IKM into OUT (SEAL_KEY_BYTES). 0, or -1 when OpenSSL fails. */
static int derive(const uint8_t ikm[KEYFILE_KEY_BYTES], uint8_t out[SEAL_KEY_BYTES])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t outlen = SEAL_KEY_BYTES;
    int ok =
        ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_salt(ctx, (const unsigned char *)HKDF_SALT, sizeof HKDF_SALT - 1) >
            0 &&
        EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, KEYFILE_KEY_BYTES) > 0 &&
        EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)HKDF_INFO, sizeof HKDF_INFO - 1) >
            0 &&
        EVP_PKEY_derive(ctx, out, &outlen) > 0 && outlen == SEAL_KEY_BYTES;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) OPENSSL_cleanse(out, SEAL_KEY_BYTES);
    return ok ? 0 : -1;
}

struct seal_keys *seal_keys_new(const struct keyfile *kf, char *err, size_t errlen)
{
    if (!kf || kf->n == 0) {
        errbuf_set(err, errlen, "seal: the key file has no key line");
        return NULL;
    }
    struct seal_keys *k = calloc(1, sizeof *k);
    if (!k) abort();
    k->keys = calloc(kf->n, sizeof *k->keys);
    if (!k->keys) abort();
    for (size_t i = 0; i < kf->n; i++) {
        struct seal_key *sk = &k->keys[i];
        memcpy(sk->kid, kf->keys[i].kid, sizeof sk->kid);
        sk->kidlen = kf->keys[i].kidlen;
        k->n++;
        if (derive(kf->keys[i].key, sk->key) < 0) {
            errbuf_set(err, errlen, "seal: OpenSSL could not derive the key of kid %s", sk->kid);
            seal_keys_free(k);
            return NULL;
        }
    }
    return k;
}

int seal_keys_load(const char *path, struct seal_keys **out, char *err, size_t errlen)
{
    struct keyfile kf;
    *out = NULL;
    if (keyfile_load(path, &kf, err, errlen) < 0) return -1;
    *out = seal_keys_new(&kf, err, errlen);
    keyfile_clear(&kf);
    return *out ? 0 : -1;
}

int seal_keys_refresh(struct seal_keys **k, const char *path, uint64_t *loaded_ns, char *err,
                      size_t errlen)
{
    uint64_t now = clock_now_ns();
    if (*loaded_ns && now - *loaded_ns < 1000000000ull) return 0;
    *loaded_ns = now;
    struct seal_keys *nk;
    if (seal_keys_load(path, &nk, err, errlen) < 0) return -1;
    seal_keys_free(*k);
    *k = nk;
    return 1;
}

void seal_keys_free(struct seal_keys *k)
{
    if (!k) return;
    if (k->keys) OPENSSL_cleanse(k->keys, k->n * sizeof *k->keys);
    free(k->keys);
    free(k);
}

const char *seal_keys_kid(const struct seal_keys *k) { return k->keys[0].kid; }

int seal_is_sealed(const char *in, size_t inlen)
{
    return inlen >= PREFIX_LEN && memcmp(in, PREFIX, PREFIX_LEN) == 0;
}

/* The additional data of a value under KID (KIDLEN) of field FIELD of record ID, into AAD.
 * Returns its length, or -1 when it does not fit (an id or a field name far too long). */
static int aad_of(const char *kid, size_t kidlen, const char *id, const char *field,
                  uint8_t aad[AAD_MAX])
{
    size_t il = strlen(id), fl = strlen(field), n = 0;
    if (3 + kidlen + 1 + il + 1 + fl > AAD_MAX) return -1;
    memcpy(aad + n, "s1", 3), n += 3; /* with its NUL: every part ends with one */
    memcpy(aad + n, kid, kidlen), n += kidlen;
    aad[n++] = 0;
    memcpy(aad + n, id, il), n += il;
    aad[n++] = 0;
    memcpy(aad + n, field, fl), n += fl;
    return (int)n;
}

/* One AES-256-GCM pass: encrypt (ENC 1) or decrypt-and-verify (ENC 0) LEN bytes of IN into OUT
 * with KEY, NONCE and AAD; TAG is written (encrypt) or checked (decrypt). 0, or -1. */
static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aadlen,
               const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = ctx != NULL;
    ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_BYTES, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) == 1;
    ok = ok && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) == 1;
    ok = ok && (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_BYTES, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(ctx, out + (len ? n : 0), &n) == 1; /* the tag check */
    if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_BYTES, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int seal_field(const struct seal_keys *k, const char *record_id, const char *field,
               const void *plain, size_t len, char *out, size_t outlen)
{
    if (outlen) out[0] = 0;
    const struct seal_key *sk = &k->keys[0];
    if (len > SEAL_PLAIN_MAX || outlen < SEAL_LEN(sk->kidlen, len) + 1) return SEAL_TOO_LARGE;
    uint8_t raw[RAW_MAX], aad[AAD_MAX];
    int alen = aad_of(sk->kid, sk->kidlen, record_id, field, aad);
    if (alen < 0) return SEAL_TOO_LARGE;
    int rc = SEAL_FAILED;
    if (RAND_bytes(raw, SEAL_NONCE_BYTES) != 1 ||
        gcm(1, sk->key, raw, aad, (size_t)alen, plain, len, raw + SEAL_NONCE_BYTES,
            raw + SEAL_NONCE_BYTES + len) < 0)
        goto out;
    size_t n = 0;
    memcpy(out, PREFIX, PREFIX_LEN), n += PREFIX_LEN;
    memcpy(out + n, sk->kid, sk->kidlen), n += sk->kidlen;
    out[n++] = '.';
    ssize_t b =
        codec_b64url_encode(raw, SEAL_NONCE_BYTES + len + SEAL_TAG_BYTES, out + n, outlen - n);
    if (b < 0) {
        out[0] = 0;
        goto out;
    }
    rc = (int)(n + (size_t)b);
out:
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

int seal_open(const struct seal_keys *k, const char *record_id, const char *field, const char *in,
              size_t inlen, char *out, size_t outlen)
{
    if (outlen) out[0] = 0;
    if (!seal_is_sealed(in, inlen)) { /* written before sealing: as it is */
        if (inlen >= outlen) return SEAL_TOO_LARGE;
        memcpy(out, in, inlen);
        out[inlen] = 0;
        return (int)inlen;
    }
    if (!k) return SEAL_UNKNOWN_KEY;
    const char *kid = in + PREFIX_LEN, *dot = memchr(kid, '.', inlen - PREFIX_LEN);
    if (!dot || !keyfile_kid_valid(kid, (size_t)(dot - kid))) return SEAL_MALFORMED;
    size_t kidlen = (size_t)(dot - kid), blen = inlen - PREFIX_LEN - kidlen - 1;
    if (blen > CODEC_B64URL_LEN(RAW_MAX)) return SEAL_TOO_LARGE;
    uint8_t raw[RAW_MAX], aad[AAD_MAX];
    ssize_t rl = codec_b64url_decode(dot + 1, blen, raw, sizeof raw);
    if (rl < SEAL_NONCE_BYTES + SEAL_TAG_BYTES) return SEAL_MALFORMED;
    size_t len = (size_t)rl - SEAL_NONCE_BYTES - SEAL_TAG_BYTES;
    if (len >= outlen) return SEAL_TOO_LARGE;
    const struct seal_key *sk = NULL;
    for (size_t i = 0; i < k->n && !sk; i++)
        if (k->keys[i].kidlen == kidlen && memcmp(k->keys[i].kid, kid, kidlen) == 0)
            sk = &k->keys[i];
    if (!sk) return SEAL_UNKNOWN_KEY;
    int alen = aad_of(sk->kid, sk->kidlen, record_id, field, aad);
    if (alen < 0) return SEAL_BAD_TAG;
    /* Decrypt into a scratch buffer: OUT gets nothing unless the tag matched. */
    uint8_t clear[SEAL_PLAIN_MAX];
    int rc = SEAL_BAD_TAG;
    if (gcm(0, sk->key, raw, aad, (size_t)alen, raw + SEAL_NONCE_BYTES, len, clear,
            raw + SEAL_NONCE_BYTES + len) == 0) {
        memcpy(out, clear, len);
        out[len] = 0;
        rc = (int)len;
    }
    OPENSSL_cleanse(clear, sizeof clear);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

const char *seal_error_str(int rc)
{
    switch (rc) {
    case SEAL_MALFORMED: return "malformed";
    case SEAL_UNKNOWN_KEY: return "unknown key";
    case SEAL_BAD_TAG: return "bad tag";
    case SEAL_TOO_LARGE: return "too large";
    case SEAL_FAILED: return "openssl failed";
    default: return rc >= 0 ? "ok" : "unknown error";
    }
}
