/* token.h: signed tokens (waiting-room tickets and sessions) and the keys that sign them.
 *
 * A token reads `v1.<kid>.<payload>.<mac>` where <payload> is the caller's bytes in base64url
 * without padding, <kid> names the key that signed it, and <mac> is base64url (no padding, 43
 * characters) of HMAC-SHA256(key[kid], "v1.<kid>.<payload>"), i.e. of everything before the last
 * dot. Tokens are signed, NOT encrypted: anyone holding one can read its payload, so never put an
 * applicant's identifier in clear in it. The payload carries its own meaning (room, place,
 * expiry, kind); this module checks only that the bytes came from us.
 *
 * Keys come from the key file (`[gateway] secret_file`, default var/secret): its format,
 * rotation, the pepper and its creation when absent are described in keyfile.h.
 *
 * Threads: a struct token_keys holds scratch HMAC state that token_sign(), token_verify() and
 * token_hmac() reuse (even through a const pointer: that is what makes a status poll cheap), so
 * one struct token_keys must not be used by two threads at once. Give each thread its own (load
 * the file once per thread) or hold a lock. Using one after fork() in the child is fine. */
#ifndef ANTRE_TOKEN_H
#define ANTRE_TOKEN_H

#include "antre/codec.h"
#include "antre/keyfile.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TOKEN_PAYLOAD_MAX 512             /* largest payload token_sign() accepts, in bytes */
#define TOKEN_KID_MAX KEYFILE_KID_MAX     /* longest kid, in characters */
#define TOKEN_KEY_BYTES KEYFILE_KEY_BYTES /* size of a signing key or the pepper */
#define TOKEN_HMAC_BYTES 32               /* size of an HMAC-SHA256 */

/* Length of a token signed with a kid of KIDLEN characters over a LEN-byte payload (without the
 * terminating NUL), the longest possible token, and a buffer that holds any token plus its NUL. */
#define TOKEN_LEN(kidlen, len)                                                                     \
    (3 + (size_t)(kidlen) + 1 + CODEC_B64URL_LEN(len) + 1 + CODEC_B64URL_LEN(TOKEN_HMAC_BYTES))
#define TOKEN_MAX_LEN TOKEN_LEN(TOKEN_KID_MAX, TOKEN_PAYLOAD_MAX) /* 747 */
#define TOKEN_BUF_SIZE (TOKEN_MAX_LEN + 1)

/* Why token_verify() refused a token. All negative, so `token_verify(...) < 0` means refused. */
enum token_error {
    TOKEN_MALFORMED = -1,     /* not `v1.<kid>.<b64url>.<43 b64url chars>`: wrong dot count, an
                                 empty part, a bad character, bad base64url, bad kid syntax */
    TOKEN_BAD_VERSION = -2,   /* well formed but the first part is not `v1` */
    TOKEN_UNKNOWN_KEY = -3,   /* the kid is not (or no longer) in the key file */
    TOKEN_BAD_SIGNATURE = -4, /* the MAC does not match: altered, forged, or signed by another
                                 key under this kid */
    TOKEN_TOO_LARGE = -5,     /* longer than TOKEN_MAX_LEN, payload over TOKEN_PAYLOAD_MAX, or
                                 the (authentic) payload does not fit the caller's buffer */
};

struct token_keys;
struct seal_keys;

/* Load the key file PATH with keyfile_load() (which creates it when it does not exist; see
 * keyfile.h for what blocks, what is logged and the messages of ERR) and set up the HMAC state
 * of every key; the raw key bytes are wiped once that is done.
 *
 * Arguments: PATH of the key file (relative to the working directory); OUT receives the keys on
 * success (NULL on failure); ERR/ERRLEN receive a one-line reason on failure.
 *
 * Returns 0 on success, -1 on failure. Free *OUT with token_keys_free(). */
int token_keys_load(const char *path, struct token_keys **out, char *err, size_t errlen);

/* Free K and wipe its key state. K may be NULL. */
void token_keys_free(struct token_keys *k);

/* The kid of the signing (first) key, NUL-terminated; owned by K, valid until K is freed. */
const char *token_keys_signing_kid(const struct token_keys *k);

/* How many signing/verifying keys K holds (the pepper not counted); at least 1. */
size_t token_keys_count(const struct token_keys *k);

/* The sealing keys (seal.h) derived from the same key lines as K's signing keys: the first seals,
 * every one opens. Owned by K, valid until K is freed; may be read by any thread. */
const struct seal_keys *token_keys_seal(const struct token_keys *k);

/* 1 when the key file has a pepper line (token_hmac() works), 0 otherwise. A gateway that binds
 * applicants to places should refuse to start without one. */
int token_keys_has_pepper(const struct token_keys *k);

/* 1 when A and B have the same pepper (or both have none), 0 otherwise. Use it on reload to
 * refuse a new key file whose pepper differs from the running one (see the top of this file). */
int token_keys_pepper_equal(const struct token_keys *a, const struct token_keys *b);

/* Sign LEN bytes of PAYLOAD with the signing key of K.
 *
 * OUT receives the token followed by a NUL; it needs TOKEN_LEN(strlen(kid), LEN) + 1 bytes
 * (TOKEN_BUF_SIZE always suffices). PAYLOAD is arbitrary bytes, 1 to TOKEN_PAYLOAD_MAX of them.
 *
 * Returns the token's length (without the NUL), or -1 when OUTLEN is too small, LEN is 0 or
 * above TOKEN_PAYLOAD_MAX (OUT is then left as an empty string when OUTLEN > 0), or OpenSSL
 * failed (not expected). Not thread-safe on one K (see the top of this file). */
int token_sign(const struct token_keys *k, const void *payload, size_t len, char *out,
               size_t outlen);

/* Check the token TOK (TOKLEN bytes, need not be NUL-terminated) against the keys of K and, when
 * it is authentic, copy its payload to PAYLOAD and its length to *PAYLOAD_LEN.
 *
 * Checks run in this order: length (TOKEN_TOO_LARGE); four non-empty dot-separated parts
 * (TOKEN_MALFORMED); version `v1` (TOKEN_BAD_VERSION); the parts' syntax: kid characters,
 * strict base64url (no padding, no stray bits), a payload of at most TOKEN_PAYLOAD_MAX bytes
 * (TOKEN_TOO_LARGE) and a 32-byte MAC; kid known (TOKEN_UNKNOWN_KEY); MAC, compared with
 * CRYPTO_memcmp in constant time (TOKEN_BAD_SIGNATURE); then PAYLOAD_CAP (TOKEN_TOO_LARGE).
 * Nothing is written to PAYLOAD or *PAYLOAD_LEN unless the token is authentic and its payload
 * fits; PAYLOAD may be NULL to check without copying (PAYLOAD_CAP is then ignored); PAYLOAD_LEN
 * may be NULL. K must not be NULL.
 *
 * Returns 0 when the token is authentic, or a negative enum token_error saying why not (an
 * OpenSSL failure, not expected, reads as TOKEN_BAD_SIGNATURE). Expiry is the caller's business:
 * it lives in the payload. Not thread-safe on one K (see the top of this file). */
int token_verify(const struct token_keys *k, const char *tok, size_t toklen, void *payload,
                 size_t payload_cap, size_t *payload_len);

/* A short English name for a token_verify() result ("ok", "malformed", "bad version",
 * "unknown key", "bad signature", "too large", "unknown error"), for logs and metrics labels.
 * The string is static. */
const char *token_error_str(int rc);

/* HMAC-SHA256 of LEN bytes of MSG under the pepper of K, into OUT (32 bytes). Meant for applicant
 * identifiers, which are stored only as these digests; the digest does not change when signing
 * keys rotate. Returns 0, or -1 when K has no pepper (OUT is then zeroed) or OpenSSL failed. Not
 * thread-safe on one K (see the top of this file). */
int token_hmac(const struct token_keys *k, const void *msg, size_t len,
               uint8_t out[TOKEN_HMAC_BYTES]);

#endif
