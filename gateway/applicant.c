/* applicant.c: applicant tokens (see applicant.h): loading the key that verifies them, checking
 * a token's header, signature (libjwt) and claims, and the binding hash of its `sub`.
 *
 * Why the header is read here before libjwt sees the token: libjwt 1.10 takes the algorithm
 * from the token and uses whatever key bytes it is given for it, so an HS256 token "signed"
 * with the text of our public key would verify. Pinning the algorithm to the key's type, and
 * refusing anything else before a signature is computed, closes that door; the algorithm libjwt
 * reports after verifying is checked once more. Every part of the token must also be strict
 * base64url (codec.h), so that a token has exactly one spelling; the claims are read here from
 * the same payload bytes libjwt verified, and checked here (libjwt 1.10 has no claim checks). */
#include "applicant.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "antre/codec.h"
#include "antre/conf.h"
#include "antre/errbuf.h"

#define KEY_FILE_MAX 65536 /* a PEM key or a secret is a few kB at most */
#define SECRET_MIN 32      /* HS256 needs a key of at least 256 bits (RFC 7518, 3.2) */
#define RSA_BITS_MIN 2048
#define HEADER_MAX 1024 /* decoded JOSE header */

/* Signature verdicts already reached, by SHA-256 of the whole token: libjwt 1.10 parses a PEM
 * key again for every token it verifies (about 0.4 ms for RS256, 0.6 ms for ES256 on our test
 * machine), so an applicant whose phone sends the same join five times during a surge would
 * cost that five times. A slot holds only a digest and a verdict, never the token; the claims
 * (exp, nbf, aud) are still read and checked on every use. Direct-mapped: a newer token takes
 * the slot of an older one. Per process and per loaded key (a reload starts empty). */
#define VERDICT_SLOTS 2048

struct verdict {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    int rc; /* APPLICANT_OK, APPLICANT_BAD_SIGNATURE or APPLICANT_WRONG_ALG */
    int used;
};

struct verdicts {
    uint64_t hits, misses;
    struct verdict slot[VERDICT_SLOTS];
};

struct applicant_key {
    enum applicant_alg alg;
    unsigned char *bytes; /* the HS256 secret, or the public key as PEM SubjectPublicKeyInfo */
    int len;
    struct verdicts *seen; /* the key is shared read-only; what it has seen is not */
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) abort();
    return p;
}

/* ---- loading ---- */

/* The whole file PATH (at most KEY_FILE_MAX bytes) into a fresh buffer (*LEN bytes, plus a NUL),
 * and its mode into *MODE; NULL with ERR set. */
static unsigned char *read_key_file(const char *path, size_t *len, mode_t *mode, char *err,
                                    size_t errlen)
{
    /* O_NONBLOCK: a FIFO in the key's place must not hang start-up (refused below). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        errbuf_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    *mode = st.st_mode;
    unsigned char *buf = xmalloc(KEY_FILE_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, KEY_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            errbuf_set(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
        if (r == 0) {
            close(fd);
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        n += (size_t)r;
        if (n > KEY_FILE_MAX) {
            errbuf_set(err, errlen, "%s: larger than %d bytes; is this really a key?", path,
                       KEY_FILE_MAX);
            break;
        }
    }
    close(fd);
    OPENSSL_cleanse(buf, KEY_FILE_MAX + 1);
    free(buf);
    return NULL;
}

/* The public key in the PEM text BUF: a PUBLIC KEY block, or a certificate's key. */
static EVP_PKEY *read_public_key(const unsigned char *buf, size_t len)
{
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) abort();
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pk) {
        (void)BIO_reset(bio);
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert) pk = X509_get_pubkey(cert);
        X509_free(cert);
    }
    BIO_free(bio);
    return pk;
}

/* K from the public key in the PEM text BUF: the algorithm by the key's type, and the key
 * written again as a PUBLIC KEY block (what libjwt reads). 0, or -1 with ERR set. */
static int load_public(struct applicant_key *k, const unsigned char *buf, size_t len,
                       const char *path, char *err, size_t errlen)
{
    if (strstr((const char *)buf, "PRIVATE KEY")) {
        errbuf_set(err, errlen,
                   "%s: holds a private key; give antre only the public key (openssl pkey -in "
                   "KEY.pem -pubout -out PUBLIC.pem) and keep the private key with the login "
                   "system",
                   path);
        return -1;
    }
    EVP_PKEY *pk = read_public_key(buf, len);
    if (!pk) {
        errbuf_set(err, errlen,
                   "%s: not a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate", path);
        return -1;
    }
    int rc = -1;
    char group[64] = "";
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pk) < RSA_BITS_MIN) {
            errbuf_set(err, errlen, "%s: an RSA key of %d bits; RS256 needs at least %d", path,
                       EVP_PKEY_get_bits(pk), RSA_BITS_MIN);
            goto out;
        }
        k->alg = APPLICANT_RS256;
        break;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_group_name(pk, group, sizeof group, NULL) ||
            strcmp(group, "prime256v1") != 0) {
            errbuf_set(err, errlen, "%s: an EC key on curve %s; ES256 needs P-256 (prime256v1)",
                       path, group[0] ? group : "(unknown)");
            goto out;
        }
        k->alg = APPLICANT_ES256;
        break;
    default:
        errbuf_set(err, errlen,
                   "%s: a %s public key; applicant tokens are RS256 (RSA) or ES256 (EC P-256)",
                   path, EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
        goto out;
    }
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long n;
    if (!mem || !PEM_write_bio_PUBKEY(mem, pk) || (n = BIO_get_mem_data(mem, &pem)) <= 0) {
        BIO_free(mem);
        errbuf_set(err, errlen, "%s: OpenSSL could not write the public key", path);
        goto out;
    }
    k->bytes = xmalloc((size_t)n + 1);
    memcpy(k->bytes, pem, (size_t)n);
    k->bytes[n] = '\0';
    k->len = (int)n;
    BIO_free(mem);
    rc = 0;
out:
    EVP_PKEY_free(pk);
    return rc;
}

/* K as the HS256 secret BUF (LEN bytes, trailing blanks dropped), from a file of MODE. */
static int load_secret(struct applicant_key *k, const unsigned char *buf, size_t len, mode_t mode,
                       const char *path, char *err, size_t errlen)
{
    if (mode & 077) {
        errbuf_set(err, errlen,
                   "%s: a shared secret readable or writable by group or others (mode %04o); "
                   "run `chmod 600 %s`",
                   path, (unsigned)(mode & 07777), path);
        return -1;
    }
    while (len && strchr(" \t\r\n", buf[len - 1])) len--;
    if (len < SECRET_MIN) {
        errbuf_set(err, errlen,
                   "%s: a shared secret of %zu bytes; HS256 needs at least %d (make one with "
                   "`openssl rand -hex 32`), or give a PEM public key for RS256/ES256",
                   path, len, SECRET_MIN);
        return -1;
    }
    k->alg = APPLICANT_HS256;
    k->bytes = xmalloc(len);
    memcpy(k->bytes, buf, len);
    k->len = (int)len;
    return 0;
}

int applicant_key_load(const char *path, struct applicant_key **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !path[0]) {
        errbuf_set(err, errlen, "applicant key file: empty path");
        return -1;
    }
    size_t len = 0;
    mode_t mode = 0;
    unsigned char *buf = read_key_file(path, &len, &mode, err, errlen);
    if (!buf) return -1;
    struct applicant_key *k = xmalloc(sizeof *k);
    memset(k, 0, sizeof *k);
    k->seen = calloc(1, sizeof *k->seen);
    if (!k->seen) abort();
    int rc = strstr((const char *)buf, "-----BEGIN ")
                 ? load_public(k, buf, len, path, err, errlen)
                 : load_secret(k, buf, len, mode, path, err, errlen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (rc < 0) {
        applicant_key_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

void applicant_key_free(struct applicant_key *k)
{
    if (!k) return;
    if (k->bytes) OPENSSL_cleanse(k->bytes, (size_t)k->len);
    free(k->bytes);
    free(k->seen);
    free(k);
}

enum applicant_alg applicant_key_alg(const struct applicant_key *k) { return k->alg; }

void applicant_key_cache_stats(const struct applicant_key *k, uint64_t *hits, uint64_t *misses)
{
    *hits = k->seen->hits;
    *misses = k->seen->misses;
}

const char *applicant_alg_name(enum applicant_alg alg)
{
    switch (alg) {
    case APPLICANT_HS256: return "HS256";
    case APPLICANT_RS256: return "RS256";
    case APPLICANT_ES256: return "ES256";
    }
    return "?";
}

/* ---- verifying ---- */

/* Check the shape of the compact JWS TOKEN (LEN bytes): three strict base64url parts; a JSON
 * header without `crit` whose alg is WANT (and typ, if any, JWT); a JSON object as payload,
 * its claims into *CLAIMS (free with json_decref; NULL unless APPLICANT_OK). Duplicate members
 * are refused: a token must not mean two things. */
static int check_shape(const char *token, size_t len, const char *want, json_t **claims)
{
    *claims = NULL;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return APPLICANT_MALFORMED;
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1),
           slen = len - (size_t)(d2 + 1 - token);
    unsigned char body[CODEC_B64URL_DECODED_LEN(APPLICANT_TOKEN_MAX)];
    char head[HEADER_MAX];
    ssize_t hn = hlen && CODEC_B64URL_DECODED_LEN(hlen) <= sizeof head
                     ? codec_b64url_decode(token, hlen, head, sizeof head)
                     : -1;
    ssize_t bn = plen ? codec_b64url_decode(d1 + 1, plen, body, sizeof body) : -1;
    if (hn < 0 || bn < 0 ||
        codec_b64url_decode(d2 + 1, slen, body + bn, sizeof body - (size_t)bn) < 0)
        return APPLICANT_MALFORMED;
    /* libjwt reads both as C strings: a NUL byte would make it read other claims than ours */
    if (memchr(head, '\0', (size_t)hn) || memchr(body, '\0', (size_t)bn))
        return APPLICANT_MALFORMED;
    json_t *h = json_loadb(head, (size_t)hn, JSON_REJECT_DUPLICATES, NULL);
    json_t *c = json_loadb((const char *)body, (size_t)bn, JSON_REJECT_DUPLICATES, NULL);
    int rc = APPLICANT_OK;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const json_t *typ = json_object_get(h, "typ");
    /* libjwt refuses any typ but JWT: say so here rather than as a bad signature */
    if (!json_is_object(h) || json_object_get(h, "crit") || !json_is_object(c) ||
        (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)))
        rc = APPLICANT_MALFORMED;
    else if (!alg || strcmp(alg, want) != 0) rc = APPLICANT_WRONG_ALG;
    else if (slen == 0) rc = APPLICANT_BAD_SIGNATURE;
    json_decref(h);
    if (rc == APPLICANT_OK) *claims = c;
    else json_decref(c);
    return rc;
}

/* A NumericDate claim NAME of CLAIMS: 1 with *OUT when present and a number, 0 when absent, -1
 * when present but not a finite number. */
static int numeric_date(const json_t *claims, const char *name, double *out)
{
    const json_t *v = json_object_get(claims, name);
    if (!v) return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v))) return -1;
    *out = json_number_value(v);
    return 1;
}

/* 1 when the aud claim AUD (a string or an array of strings) names AUDIENCE. */
static int names_audience(const json_t *aud, const char *audience)
{
    if (json_is_string(aud)) return strcmp(json_string_value(aud), audience) == 0;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const char *v = json_string_value(json_array_get(aud, i));
        if (v && !strcmp(v, audience)) return 1;
    }
    return 0;
}

/* The claims of a verified token against AUDIENCE and NOW_S; `sub` into SUB. */
static int check_claims(const json_t *claims, const char *audience, int64_t now_s, char *sub,
                        size_t subcap, size_t *sublen)
{
    const json_t *s = json_object_get(claims, "sub"), *aud = json_object_get(claims, "aud");
    double exp = 0, nbf = 0, iat = 0;
    int has_exp = numeric_date(claims, "exp", &exp), has_nbf = numeric_date(claims, "nbf", &nbf),
        has_iat = numeric_date(claims, "iat", &iat);
    if (!json_is_object(claims) || !json_is_string(s) || has_exp != 1 || has_nbf < 0 ||
        has_iat < 0 || !(json_is_string(aud) || json_is_array(aud)))
        return APPLICANT_BAD_CLAIMS;
    size_t n = json_string_length(s);
    const char *sv = json_string_value(s);
    if (n < 1 || n > APPLICANT_SUB_MAX || n + 1 > subcap || memchr(sv, '\0', n))
        return APPLICANT_BAD_CLAIMS;
    double now = (double)now_s;
    if (now > exp + APPLICANT_LEEWAY_S) return APPLICANT_EXPIRED;
    if ((has_nbf && now + APPLICANT_LEEWAY_S < nbf) || (has_iat && now + APPLICANT_LEEWAY_S < iat))
        return APPLICANT_NOT_YET_VALID;
    if (!names_audience(aud, audience)) return APPLICANT_WRONG_AUDIENCE;
    memcpy(sub, sv, n);
    sub[n] = '\0';
    *sublen = n;
    return APPLICANT_OK;
}

/* libjwt's verdict on TOKEN's signature under K with algorithm WANT. */
static int verify_signature(const struct applicant_key *k, const char *token, size_t len,
                            const char *want)
{
    char text[APPLICANT_TOKEN_MAX + 1];
    memcpy(text, token, len);
    text[len] = '\0';
    jwt_t *jwt = NULL;
    int rc = APPLICANT_OK;
    if (jwt_decode(&jwt, text, k->bytes, k->len) != 0 || !jwt) rc = APPLICANT_BAD_SIGNATURE;
    else if (jwt_get_alg(jwt) != jwt_str_alg(want)) rc = APPLICANT_WRONG_ALG;
    if (jwt) jwt_free(jwt);
    return rc;
}

int applicant_verify(const struct applicant_key *k, const char *token, size_t len,
                     const char *audience, int64_t now_s, char *sub, size_t subcap, size_t *sublen)
{
    if (!token || len < 1 || len > APPLICANT_TOKEN_MAX || memchr(token, '\0', len))
        return APPLICANT_MALFORMED;
    const char *want = applicant_alg_name(k->alg);
    json_t *claims = NULL;
    int rc = check_shape(token, len, want, &claims);
    if (rc != APPLICANT_OK) return rc;

    /* libjwt checks the signature over the very bytes whose claims were read above, unless
     * these very bytes were checked before (struct verdicts). */
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, digest);
    uint32_t at;
    memcpy(&at, digest, sizeof at);
    struct verdicts *seen = k->seen;
    struct verdict *v = &seen->slot[at % VERDICT_SLOTS];
    if (v->used && CRYPTO_memcmp(v->digest, digest, sizeof digest) == 0) {
        rc = v->rc;
        seen->hits++;
    } else {
        rc = verify_signature(k, token, len, want);
        memcpy(v->digest, digest, sizeof digest);
        v->rc = rc;
        v->used = 1;
        seen->misses++;
    }
    if (rc == APPLICANT_OK) rc = check_claims(claims, audience, now_s, sub, subcap, sublen);
    json_decref(claims);
    return rc;
}

static const struct {
    int rc;
    const char *reason, *msg_id, *msg_en;
} results[] = {
    {APPLICANT_OK, "ok", "", ""},
    {APPLICANT_MALFORMED, "malformed",
     "applicant harus berupa token pendaftar (JWT) dari sistem login program, bukan teks biasa; "
     "masuk lewat situs program untuk mendapatkannya.",
     "applicant must be an applicant token (a JWT) from the programme's login, not plain text; "
     "sign in on the programme's site to get one."},
    {APPLICANT_WRONG_ALG, "wrong_alg",
     "Token pendaftar memakai algoritma yang tidak diterima antrean ini; sistem login harus "
     "menandatanganinya dengan kunci yang dipasang untuk antrean ini.",
     "The applicant token uses an algorithm this queue does not accept; the login system must "
     "sign it with the key this queue is configured with."},
    {APPLICANT_BAD_SIGNATURE, "bad_signature",
     "Tanda tangan token pendaftar tidak cocok; masuk lagi lewat situs program untuk "
     "mendapatkan token baru.",
     "The applicant token's signature does not match; sign in again on the programme's site to "
     "get a new one."},
    {APPLICANT_BAD_CLAIMS, "bad_claims",
     "Token pendaftar harus memuat sub, exp dan aud yang benar; sistem login perlu "
     "memperbaikinya.",
     "The applicant token must carry valid sub, exp and aud claims; the login system needs "
     "fixing."},
    {APPLICANT_EXPIRED, "expired",
     "Token pendaftar sudah kedaluwarsa; masuk lagi lewat situs program untuk mendapatkan token "
     "baru.",
     "The applicant token has expired; sign in again on the programme's site to get a new one."},
    {APPLICANT_NOT_YET_VALID, "not_yet_valid",
     "Token pendaftar belum berlaku; coba lagi sebentar lagi (atau periksa jam sistem login).",
     "The applicant token is not valid yet; try again shortly (or check the login system's "
     "clock)."},
    {APPLICANT_WRONG_AUDIENCE, "wrong_audience",
     "Token pendaftar dibuat untuk layanan lain (aud); minta token untuk antrean ini.",
     "The applicant token was made for another service (aud); get one for this queue."},
};

/* The index of RC's entry in results[], or -1. */
static int result_at(int rc)
{
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
        if (results[i].rc == rc) return (int)i;
    return -1;
}

const char *applicant_result_str(int rc)
{
    int i = result_at(rc);
    return i < 0 ? "unknown" : results[i].reason;
}

void applicant_result_msg(int rc, const char **msg_id, const char **msg_en)
{
    int i = result_at(rc);
    if (i < 0) i = result_at(APPLICANT_MALFORMED); /* nothing else is answered */
    *msg_id = results[i].msg_id;
    *msg_en = results[i].msg_en;
}

/* ---- binding ---- */

int applicant_hash(const struct token_keys *keys, const char *room, const char *sub, size_t len,
                   uint8_t out[TOKEN_HMAC_BYTES])
{
    char msg[CONF_ROOM_NAME + 1 + APPLICANT_SUB_MAX];
    size_t rl = strlen(room);
    if (rl >= CONF_ROOM_NAME || len > APPLICANT_SUB_MAX) return -1;
    /* Room and sub hashed together: one applicant has unrelated hashes in two rooms. */
    memcpy(msg, room, rl);
    msg[rl] = '\n';
    memcpy(msg + rl + 1, sub, len);
    return token_hmac(keys, msg, rl + 1 + len, out);
}

int applicant_check_conf(const struct conf *conf, char *err, size_t errlen)
{
    int rc = 0;
    size_t used = 0;
    if (errlen) err[0] = '\0';
    for (int i = 0; i < conf->nrooms; i++) {
        const struct conf_room *r = &conf->rooms[i];
        if (!r->applicant_key_file[0]) continue;
        char why[CONF_STR + 300];
        struct applicant_key *k = NULL;
        if (applicant_key_load(r->applicant_key_file, &k, why, sizeof why) == 0) {
            applicant_key_free(k);
            continue;
        }
        rc = -1;
        if (used < errlen)
            used += (size_t)snprintf(err + used, errlen - used,
                                     "%s: [room.%s] applicant_key_file: %s\n", conf->path, r->name,
                                     why);
    }
    return rc;
}
