/* applicant.h: applicant tokens, the proof that binds a join to one applicant (docs/api.md,
 * "Applicant tokens").
 *
 * The programme's login system signs a JWT for the applicant who signed in: `sub` (who), `exp`,
 * `aud` (this room's audience), optionally `nbf` and `iat`. A room verifies it with the key of
 * `[room.NAME] applicant_key_file`, and the join is bound to an HMAC of `sub` under the key
 * file's pepper (applicant_hash), so that a place and what its sessions create belong to the
 * applicant, and only someone holding a fresh token signed for that `sub` can use them.
 *
 * The key decides the algorithm, never the token: a PEM public key is RS256 (RSA, at least 2048
 * bits) or ES256 (EC P-256); anything else is an HS256 shared secret. A token whose header names
 * another algorithm (including "none", or HS256 over a public key's PEM text, the classic
 * algorithm confusion) is refused before any signature is computed. Signatures are checked by
 * libjwt; the claims are checked here (libjwt 1.10 checks none), with APPLICANT_LEEWAY_S of clock
 * skew allowed.
 *
 * Neither key material nor tokens are ever logged or put in an error message. */
#ifndef ANTRE_APPLICANT_H
#define ANTRE_APPLICANT_H

#include <stddef.h>
#include <stdint.h>

#include "antre/token.h"

struct conf;

#define APPLICANT_SUB_MAX 256    /* longest `sub`, in bytes */
#define APPLICANT_TOKEN_MAX 4000 /* longest token (the join body is at most 4096 bytes) */
#define APPLICANT_LEEWAY_S 60    /* clock skew allowed on exp, nbf and iat */

enum applicant_alg { APPLICANT_HS256 = 1, APPLICANT_RS256, APPLICANT_ES256 };

/* What applicant_verify() found: 0, or one of the refusals below. */
enum applicant_result {
    APPLICANT_OK = 0,
    APPLICANT_MALFORMED = -1,      /* not a compact JWS (three base64url parts, JSON header) */
    APPLICANT_WRONG_ALG = -2,      /* alg is not the one the key implies ("none" included) */
    APPLICANT_BAD_SIGNATURE = -3,  /* the signature does not verify under the key */
    APPLICANT_BAD_CLAIMS = -4,     /* sub, exp or aud missing or of the wrong type */
    APPLICANT_EXPIRED = -5,        /* exp passed (beyond the leeway) */
    APPLICANT_NOT_YET_VALID = -6,  /* nbf or iat still ahead (beyond the leeway) */
    APPLICANT_WRONG_AUDIENCE = -7, /* aud does not name this room's audience */
};

struct applicant_key;

/* Load the applicant key file PATH into *OUT: a PEM public key (`-----BEGIN PUBLIC KEY-----` or
 * a certificate) makes RS256 or ES256 by its type; any other content is an HS256 shared secret
 * (the file's bytes, trailing blanks and newlines dropped; at least 32 bytes; the file must be
 * private, mode 0600 or 0400). A private key is refused with the command that extracts the
 * public one.
 *
 * Blocks (file I/O): call at start-up or on reload. Returns 0 with *OUT set (free with
 * applicant_key_free), or -1 with a one-line reason beginning with PATH in ERR (never key
 * material). */
int applicant_key_load(const char *path, struct applicant_key **out, char *err, size_t errlen);

/* Wipe and free K (may be NULL). */
void applicant_key_free(struct applicant_key *k);

/* How many of K's signature checks were answered from its verdicts (*HITS: the same token
 * seen before) and how many by libjwt (*MISSES), since K was loaded. */
void applicant_key_cache_stats(const struct applicant_key *k, uint64_t *hits, uint64_t *misses);

/* The algorithm K verifies, and its JOSE name ("HS256", "RS256", "ES256"). */
enum applicant_alg applicant_key_alg(const struct applicant_key *k);
const char *applicant_alg_name(enum applicant_alg alg);

/* Verify the applicant token TOKEN (LEN bytes, not NUL-terminated) with K for AUDIENCE at Unix
 * time NOW_S: its header's alg must be K's, its signature valid, `exp` (required) not passed,
 * `nbf` and `iat` (optional) not ahead, `aud` (a string, or an array of strings) naming
 * AUDIENCE, and `sub` a string of 1-APPLICANT_SUB_MAX bytes without NUL. On success copies `sub`
 * into SUB (SUBCAP >= APPLICANT_SUB_MAX + 1 bytes, NUL-terminated), its length into *SUBLEN, and
 * returns APPLICANT_OK; otherwise returns an enum applicant_result refusal. The signature of a
 * token seen before under K is not computed again (its verdict is kept); its claims are. */
int applicant_verify(const struct applicant_key *k, const char *token, size_t len,
                     const char *audience, int64_t now_s, char *sub, size_t subcap, size_t *sublen);

/* The stable reason word of RC ("malformed", "wrong_alg", "bad_signature", "bad_claims",
 * "expired", "not_yet_valid", "wrong_audience"; "ok" for 0), for the "reason" of the 400 answer
 * and for tests. Static storage. */
const char *applicant_result_str(int rc);

/* What the applicant (or integrator) should do about refusal RC, in Indonesian (*MSG_ID) and
 * English (*MSG_EN). Static storage. */
void applicant_result_msg(int rc, const char **msg_id, const char **msg_en);

/* The binding hash of SUB (LEN bytes) in ROOM: HMAC-SHA256 under the pepper of KEYS of
 * "ROOM\nSUB", so one applicant has unrelated hashes in two rooms and no `sub` is stored in
 * clear. Returns 0, or -1 without a pepper (or when ROOM and SUB do not fit). */
int applicant_hash(const struct token_keys *keys, const char *room, const char *sub, size_t len,
                   uint8_t out[TOKEN_HMAC_BYTES]);

/* For `antre-gateway -t`: load every room's applicant_key_file of CONF. Returns 0, or -1 with one
 * line per bad file in ERR, as `CONF: [room.NAME] applicant_key_file: PATH: reason`. */
int applicant_check_conf(const struct conf *conf, char *err, size_t errlen);

#endif
