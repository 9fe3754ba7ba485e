/* seal.h: personal fields sealed at rest (AES-256-GCM), so Redis' memory, AOF and RDB files
 * never hold an applicant's NIK, KK, name, birth date, e-mail or phone in clear.
 *
 * A sealed value is one printable string, stored in place of the clear value:
 *
 *     s1.<kid>.<base64url, no padding, of nonce (12 bytes) | ciphertext | tag (16 bytes)>
 *
 * Keys: every key line of the key file ([gateway] secret_file; keyfile.h) gives one sealing key,
 * derived with HKDF-SHA256 (salt "antre-seal", info "antre seal v1 aes-256-gcm") from the line's
 * 32 bytes, and named by the line's kid. The FIRST key line seals new values; every key line
 * opens the values it sealed, so rotation is the signing keys' rotation: a new key line at the
 * top seals from the next load on. Unlike a token, a sealed value does not expire: a key line may
 * be deleted only once no record sealed under it is kept (see docs/operations.md, "Data at
 * rest"). The derivation keeps a sealing key apart from the same line's signing use.
 *
 * Each ciphertext is bound by its additional data to its kid, to the id of the record holding it
 * and to the field's name: a sealed value copied to another record or field does not open. The
 * nonce is random (RAND_bytes) for every value; the tag is checked by OpenSSL's GCM (in constant
 * time) before any byte is given out. Nothing here logs, and no error quotes a value.
 *
 * Threads: a struct seal_keys is read-only once made, and may be shared by threads. */
#ifndef ANTRE_SEAL_H
#define ANTRE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "antre/codec.h"
#include "antre/keyfile.h"

#define SEAL_PLAIN_MAX 512 /* longest value sealed, in bytes */
#define SEAL_NONCE_BYTES 12
#define SEAL_TAG_BYTES 16
#define SEAL_KEY_BYTES 32 /* AES-256 */

/* Length of the sealed form of LEN bytes under a kid of KIDLEN characters (without a NUL), the
 * longest one, and a buffer that holds any sealed value plus its NUL. */
#define SEAL_LEN(kidlen, len)                                                                      \
    (3 + (size_t)(kidlen) + 1 + CODEC_B64URL_LEN(SEAL_NONCE_BYTES + (size_t)(len) + SEAL_TAG_BYTES))
#define SEAL_MAX SEAL_LEN(KEYFILE_KID_MAX, SEAL_PLAIN_MAX)
#define SEAL_BUF_SIZE (SEAL_MAX + 1)

/* Why seal_field() or seal_open() failed; all negative. */
enum seal_error {
    SEAL_MALFORMED = -1,   /* starts as a sealed value ("s1.") but is not one */
    SEAL_UNKNOWN_KEY = -2, /* sealed under a kid that is not (or no longer) in the key file */
    SEAL_BAD_TAG = -3,     /* the tag does not match: another key under this kid, another record
                              or field, or altered bytes */
    SEAL_TOO_LARGE = -4,   /* the value is over SEAL_PLAIN_MAX, or OUT is too small */
    SEAL_FAILED = -5,      /* OpenSSL failed (not expected) */
};

struct seal_keys; /* opaque */

/* The sealing keys of the loaded key file KF (one per key line, KF->keys[0] seals), derived now;
 * KF is not kept. Returns the keys (free with seal_keys_free), or NULL with a reason in ERR when
 * OpenSSL fails or KF has no key line. */
struct seal_keys *seal_keys_new(const struct keyfile *kf, char *err, size_t errlen);

/* Load the key file PATH (keyfile_load(): it is created when absent, and blocks on file I/O)
 * and derive its sealing keys into *OUT. Returns 0, or -1 with a reason in ERR (*OUT NULL). */
int seal_keys_load(const char *path, struct seal_keys **out, char *err, size_t errlen);

/* Read the key file PATH again into *K (replacing it) when it lacks a kid a value was sealed
 * under (a key line added since it was read), at most once a second: *LOADED_NS is the
 * clock_now_ns() of the last reading, updated here. Blocks on file I/O (a worker's business, never
 * the gateway's loop). Returns 1 when *K was replaced, 0 when it was read too recently, -1 with a
 * reason in ERR when the file does not load (*K is kept). */
int seal_keys_refresh(struct seal_keys **k, const char *path, uint64_t *loaded_ns, char *err,
                      size_t errlen);

/* Wipe and free K. NULL is ignored. */
void seal_keys_free(struct seal_keys *k);

/* The kid new values are sealed under; owned by K. */
const char *seal_keys_kid(const struct seal_keys *k);

/* Seal LEN bytes of PLAIN as field FIELD of the record RECORD_ID (both NUL-terminated, both
 * bound into the tag) under K's first key, into OUT (OUTLEN bytes: SEAL_BUF_SIZE always
 * suffices) with its NUL. Returns the sealed value's length, or SEAL_TOO_LARGE (LEN over
 * SEAL_PLAIN_MAX, OUT too small) or SEAL_FAILED; OUT is then "" when OUTLEN > 0. */
int seal_field(const struct seal_keys *k, const char *record_id, const char *field,
               const void *plain, size_t len, char *out, size_t outlen);

/* Open IN (INLEN bytes, need not be NUL-terminated), the value of field FIELD of record
 * RECORD_ID, into OUT (OUTLEN bytes) with a NUL after it. A value that is not sealed (does not
 * start with "s1.": written before sealing existed) is copied as it is. Returns the clear
 * value's length, or a negative enum seal_error (OUT is then "" when OUTLEN > 0; nothing of an
 * unauthenticated value is ever written to it). A clear value may hold a NUL byte only if it
 * was sealed with one; callers that seal strings get strings back. K NULL opens nothing sealed
 * (SEAL_UNKNOWN_KEY). */
int seal_open(const struct seal_keys *k, const char *record_id, const char *field, const char *in,
              size_t inlen, char *out, size_t outlen);

/* 1 when IN (INLEN bytes) has the form of a sealed value's start ("s1."), else 0. */
int seal_is_sealed(const char *in, size_t inlen);

/* A short English name of a seal_field()/seal_open() result, for logs ("ok", "malformed",
 * "unknown key", "bad tag", "too large", "openssl failed"). Static. */
const char *seal_error_str(int rc);

#endif
