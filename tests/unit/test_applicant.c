/* test_applicant.c: unit tests of applicant tokens (gateway/applicant.c): loading the key file,
 * verifying tokens with each algorithm, refusing every forgery and stale token, and the binding
 * hash.
 *
 * Tokens are minted here with OpenSSL alone (HMAC(), EVP_DigestSign, EVP_EncodeBlock), never with
 * libjwt or the code under test; keys are generated fresh for each test and written into the
 * test's own temporary directory. */
#include "applicant.h"

#include <criterion/criterion.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antre/conf.h"
#include "antre/token.h"
#include "tmpdir.h"

#define SECRET "an-hs256-shared-secret-of-more-than-32-bytes"
#define PEPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define ROOM "gelombang"

static char tmp[TMPDIR_LEN];
static char err[1024];
static int64_t now;

static void setup(void)
{
    tmpdir_make(tmp, "applicant");
    err[0] = '\0';
    now = (int64_t)time(NULL);
}

static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(applicant, .init = setup, .fini = teardown);

/* ---- minting ---- */

/* LEN bytes of P as base64url without padding, appended to OUT (NUL-terminated). */
static void b64url_append(char *out, size_t cap, const void *p, size_t len)
{
    unsigned char enc[8192];
    cr_assert_lt(4 * ((len + 2) / 3), sizeof enc);
    int n = EVP_EncodeBlock(enc, p, (int)len);
    while (n > 0 && enc[n - 1] == '=') n--;
    for (int i = 0; i < n; i++) enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
    size_t used = strlen(out);
    cr_assert_lt(used + (size_t)n, cap);
    memcpy(out + used, enc, (size_t)n);
    out[used + (size_t)n] = '\0';
}

enum sig_kind { SIG_HMAC, SIG_PKEY, SIG_PKEY_DER, SIG_NONE };

/* The signature of MSG: an HMAC-SHA256 under KEY (KEYLEN), or a SHA-256 signature by PK (ECDSA
 * as raw r||s, as JWS wants, unless SIG_PKEY_DER). Its length in *N. */
static void sign(enum sig_kind kind, const unsigned char *key, size_t keylen, EVP_PKEY *pk,
                 const char *msg, unsigned char *sig, size_t *n)
{
    if (kind == SIG_NONE) {
        *n = 0;
        return;
    }
    if (kind == SIG_HMAC) {
        unsigned int l = 0;
        cr_assert_not_null(
            HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), sig, &l));
        *n = l;
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[1024];
    size_t dl = sizeof der;
    cr_assert_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk), 1);
    cr_assert_eq(EVP_DigestSign(md, der, &dl, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(md);
    if (kind == SIG_PKEY_DER || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC) {
        memcpy(sig, der, dl);
        *n = dl;
        return;
    }
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    cr_assert_not_null(es);
    cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
    cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
    ECDSA_SIG_free(es);
    *n = 64;
}

/* A compact JWS of HEADER and CLAIMS (JSON texts) signed as KIND says, in a static buffer. */
static const char *mint(const char *header, const char *claims, enum sig_kind kind, const void *key,
                        size_t keylen, EVP_PKEY *pk)
{
    static char tok[8192];
    tok[0] = '\0';
    b64url_append(tok, sizeof tok, header, strlen(header));
    strcat(tok, ".");
    b64url_append(tok, sizeof tok, claims, strlen(claims));
    unsigned char sig[1024];
    size_t n = 0;
    sign(kind, key, keylen, pk, tok, sig, &n);
    strcat(tok, ".");
    b64url_append(tok, sizeof tok, sig, n);
    return tok;
}

/* Claims for SUB with exp NOW+EXP_IN and aud AUD. */
static const char *claims(const char *sub, int64_t exp_in, const char *aud)
{
    static char c[512];
    snprintf(c, sizeof c, "{\"sub\":\"%s\",\"exp\":%lld,\"aud\":\"%s\",\"iat\":%lld}", sub,
             (long long)(now + exp_in), aud, (long long)now);
    return c;
}

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

/* ---- keys ---- */

static EVP_PKEY *rsa_key(int bits)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    cr_assert_not_null(pk);
    return pk;
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    cr_assert_not_null(pk);
    return pk;
}

/* PK's public key (or, with PRIVATE, the private key) as PEM text, in a static buffer. */
static const char *pem_of(EVP_PKEY *pk, int private)
{
    static char text[8192];
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_eq(private ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(b, pk),
                 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    memcpy(text, p, (size_t)n);
    text[n] = '\0';
    BIO_free(b);
    return text;
}

/* Load the key file NAME holding TEXT with MODE; asserts success. */
static struct applicant_key *load(const char *name, const char *text, mode_t mode)
{
    struct applicant_key *k = NULL;
    const char *path = tmpdir_write(tmp, name, text, mode);
    cr_assert_eq(applicant_key_load(path, &k, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(k);
    return k;
}

/* applicant_key_load of TEXT in NAME with MODE must fail with a reason naming the file and
 * matching WHY. */
static void load_fails(const char *name, const char *text, mode_t mode, const char *why)
{
    struct applicant_key *k = (struct applicant_key *)1;
    const char *path = tmpdir_write(tmp, name, text, mode);
    cr_assert_eq(applicant_key_load(path, &k, err, sizeof err), -1);
    cr_assert_null(k);
    cr_assert(strstr(err, path) == err, "reason does not begin with the path: %s", err);
    cr_assert(strstr(err, why), "reason: %s (wanted %s)", err, why);
}

static int verify(struct applicant_key *k, const char *tok, const char *aud, char *sub)
{
    size_t n = 0;
    return applicant_verify(k, tok, strlen(tok), aud, now, sub, APPLICANT_SUB_MAX + 1, &n);
}

/* ---- algorithms ---- */

Test(applicant, hs256_token_gives_its_sub)
{
    struct applicant_key *k = load("secret", SECRET "\n", 0600);
    cr_assert_eq(applicant_key_alg(k), APPLICANT_HS256);
    char sub[APPLICANT_SUB_MAX + 1];
    size_t n = 0;
    const char *t =
        mint(HS, claims("3171234567890123", 600, ROOM), SIG_HMAC, SECRET, strlen(SECRET), NULL);
    cr_assert_eq(applicant_verify(k, t, strlen(t), ROOM, now, sub, sizeof sub, &n), APPLICANT_OK);
    cr_assert_str_eq(sub, "3171234567890123");
    cr_assert_eq(n, 16);
    /* the trailing newline is not part of the secret, and a different secret does not verify */
    t = mint(HS, claims("x", 600, ROOM), SIG_HMAC, SECRET "\n", strlen(SECRET) + 1, NULL);
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_BAD_SIGNATURE);
    applicant_key_free(k);
}

Test(applicant, rs256_token_gives_its_sub)
{
    EVP_PKEY *pk = rsa_key(2048);
    struct applicant_key *k = load("rsa.pem", pem_of(pk, 0), 0644);
    cr_assert_eq(applicant_key_alg(k), APPLICANT_RS256);
    char sub[APPLICANT_SUB_MAX + 1];
    cr_assert_eq(verify(k, mint(RS, claims("alice", 600, ROOM), SIG_PKEY, NULL, 0, pk), ROOM, sub),
                 APPLICANT_OK);
    cr_assert_str_eq(sub, "alice");
    /* another RSA key's signature does not verify */
    EVP_PKEY *other = rsa_key(2048);
    cr_assert_eq(verify(k, mint(RS, claims("alice", 600, ROOM), SIG_PKEY, NULL, 0, other), ROOM,
                        sub),
                 APPLICANT_BAD_SIGNATURE);
    EVP_PKEY_free(other);
    EVP_PKEY_free(pk);
    applicant_key_free(k);
}

Test(applicant, es256_token_with_raw_signature_gives_its_sub)
{
    EVP_PKEY *pk = ec_key("P-256");
    struct applicant_key *k = load("ec.pem", pem_of(pk, 0), 0644);
    cr_assert_eq(applicant_key_alg(k), APPLICANT_ES256);
    char sub[APPLICANT_SUB_MAX + 1];
    cr_assert_eq(verify(k, mint(ES, claims("bob", 600, ROOM), SIG_PKEY, NULL, 0, pk), ROOM, sub),
                 APPLICANT_OK);
    cr_assert_str_eq(sub, "bob");
    /* JWS wants r||s: an ASN.1 DER signature (what openssl dgst prints) is refused */
    cr_assert_eq(verify(k, mint(ES, claims("bob", 600, ROOM), SIG_PKEY_DER, NULL, 0, pk), ROOM,
                        sub),
                 APPLICANT_BAD_SIGNATURE);
    EVP_PKEY_free(pk);
    applicant_key_free(k);
}

Test(applicant, certificate_gives_its_public_key)
{
    EVP_PKEY *pk = ec_key("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"login", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    cr_assert(X509_sign(x, pk, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char text[4096];
    cr_assert(n > 0 && (size_t)n < sizeof text);
    memcpy(text, p, (size_t)n);
    text[n] = '\0';
    BIO_free(b);
    X509_free(x);
    struct applicant_key *k = load("cert.pem", text, 0644);
    cr_assert_eq(applicant_key_alg(k), APPLICANT_ES256);
    char sub[APPLICANT_SUB_MAX + 1];
    cr_assert_eq(verify(k, mint(ES, claims("c", 600, ROOM), SIG_PKEY, NULL, 0, pk), ROOM, sub),
                 APPLICANT_OK);
    EVP_PKEY_free(pk);
    applicant_key_free(k);
}

/* ---- algorithm confusion ---- */

Test(applicant, alg_none_is_refused)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *hs = load("secret", SECRET, 0600);
    EVP_PKEY *pk = rsa_key(2048);
    struct applicant_key *rs = load("rsa.pem", pem_of(pk, 0), 0644);
    const char *c = claims("mallory", 600, ROOM);
    const char *none = mint("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, SIG_NONE, NULL, 0, NULL);
    cr_assert_eq(verify(hs, none, ROOM, sub), APPLICANT_WRONG_ALG);
    cr_assert_eq(verify(rs, none, ROOM, sub), APPLICANT_WRONG_ALG);
    /* nor "None", nor a header without alg */
    cr_assert_eq(verify(hs, mint("{\"alg\":\"None\"}", c, SIG_NONE, NULL, 0, NULL), ROOM, sub),
                 APPLICANT_WRONG_ALG);
    cr_assert_eq(verify(hs, mint("{\"typ\":\"JWT\"}", c, SIG_HMAC, SECRET, strlen(SECRET), NULL),
                        ROOM, sub),
                 APPLICANT_WRONG_ALG);
    EVP_PKEY_free(pk);
    applicant_key_free(hs);
    applicant_key_free(rs);
}

Test(applicant, hs256_signed_with_the_public_key_text_is_refused)
{
    char sub[APPLICANT_SUB_MAX + 1];
    EVP_PKEY *pk = rsa_key(2048);
    char pem[8192];
    snprintf(pem, sizeof pem, "%s", pem_of(pk, 0));
    struct applicant_key *rs = load("rsa.pem", pem, 0644);
    const char *c = claims("mallory", 600, ROOM);
    /* the classic confusion: the public key's PEM text used as an HMAC secret */
    cr_assert_eq(verify(rs, mint(HS, c, SIG_HMAC, pem, strlen(pem), NULL), ROOM, sub),
                 APPLICANT_WRONG_ALG);
    /* and the other way round, and the other asymmetric algorithm */
    struct applicant_key *hs = load("secret", SECRET, 0600);
    cr_assert_eq(verify(hs, mint(RS, c, SIG_PKEY, NULL, 0, pk), ROOM, sub), APPLICANT_WRONG_ALG);
    cr_assert_eq(verify(rs, mint(ES, c, SIG_PKEY, NULL, 0, pk), ROOM, sub), APPLICANT_WRONG_ALG);
    cr_assert_eq(verify(rs, mint(RS, c, SIG_PKEY, NULL, 0, pk), ROOM, sub), APPLICANT_OK);
    EVP_PKEY_free(pk);
    applicant_key_free(rs);
    applicant_key_free(hs);
}

Test(applicant, crit_or_another_typ_is_refused)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *k = load("secret", SECRET, 0600);
    const char *t = mint("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims("a", 600, ROOM), SIG_HMAC,
                         SECRET, strlen(SECRET), NULL);
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_MALFORMED);
    /* typ, when present, is JWT (any case) */
    const char *c = claims("a", 600, ROOM);
    t = mint("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", c, SIG_HMAC, SECRET, strlen(SECRET), NULL);
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_MALFORMED);
    t = mint("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", c, SIG_HMAC, SECRET, strlen(SECRET), NULL);
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_OK);
    t = mint("{\"alg\":\"HS256\"}", c, SIG_HMAC, SECRET, strlen(SECRET), NULL);
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_OK);
    applicant_key_free(k);
}

/* ---- tampering and shape ---- */

Test(applicant, tampered_payload_is_refused)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *k = load("secret", SECRET, 0600);
    char t[8192];
    snprintf(t, sizeof t, "%s",
             mint(HS, claims("alice", 600, ROOM), SIG_HMAC, SECRET, strlen(SECRET), NULL));
    /* swap in bob's claims under alice's signature */
    char bob[8192];
    snprintf(bob, sizeof bob, "%s",
             mint(HS, claims("bob", 600, ROOM), SIG_HMAC, SECRET, strlen(SECRET), NULL));
    char *sig = strrchr(t, '.'), *bob_sig = strrchr(bob, '.');
    char forged[8192];
    snprintf(forged, sizeof forged, "%.*s%s", (int)(bob_sig - bob), bob, sig);
    cr_assert_eq(verify(k, forged, ROOM, sub), APPLICANT_BAD_SIGNATURE);
    /* one flipped character of the signature */
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_BAD_SIGNATURE);
    applicant_key_free(k);
}

/* The signature verdict of a token seen before is reused; its claims are not: a repeated token
 * is refused once it expired or for another audience, and a changed byte is checked anew. */
Test(applicant, a_repeated_token_reuses_its_signature_verdict_but_not_its_claims)
{
    EVP_PKEY *pk = rsa_key(2048);
    struct applicant_key *k = load("rsa.pem", pem_of(pk, 0), 0644);
    char sub[APPLICANT_SUB_MAX + 1], t[8192];
    uint64_t hits, misses;
    snprintf(t, sizeof t, "%s", mint(RS, claims("alice", 600, ROOM), SIG_PKEY, NULL, 0, pk));
    for (int i = 0; i < 5; i++) cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_OK);
    cr_assert_str_eq(sub, "alice");
    applicant_key_cache_stats(k, &hits, &misses);
    cr_assert_eq(misses, 1);
    cr_assert_eq(hits, 4);
    /* the same bytes later: past exp (with the leeway), or offered to another room */
    int64_t then = now;
    now += 600 + APPLICANT_LEEWAY_S + 1;
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_EXPIRED);
    now = then;
    cr_assert_eq(verify(k, t, "another-room", sub), APPLICANT_WRONG_AUDIENCE);
    /* one flipped character of the signature is another token: verified, and refused each time */
    char *sig = strrchr(t, '.'), was = sig[7];
    sig[7] = was == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_BAD_SIGNATURE);
    cr_assert_eq(verify(k, t, ROOM, sub), APPLICANT_BAD_SIGNATURE);
    applicant_key_cache_stats(k, &hits, &misses);
    cr_assert_eq(misses, 2);
    cr_assert_eq(hits, 7);
    /* a key loaded again (a reload) has seen nothing */
    struct applicant_key *k2 = load("rsa2.pem", pem_of(pk, 0), 0644);
    sig[7] = was;
    cr_assert_eq(verify(k2, t, ROOM, sub), APPLICANT_OK);
    applicant_key_cache_stats(k2, &hits, &misses);
    cr_assert_eq(misses, 1);
    cr_assert_eq(hits, 0);
    applicant_key_free(k2);
    applicant_key_free(k);
    EVP_PKEY_free(pk);
}

Test(applicant, what_is_not_a_jwt_is_malformed)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *k = load("secret", SECRET, 0600);
    const char *good = mint(HS, claims("a", 600, ROOM), SIG_HMAC, SECRET, strlen(SECRET), NULL);
    const char *bad[] = {"3171234567890123",  "", "a.b", "a.b.c.d", ".x.y", "eyJ.!!.x",
                         "not a token at all"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(verify(k, bad[i], ROOM, sub), APPLICANT_MALFORMED, "%s", bad[i]);
    /* padding or a space makes a second spelling of a valid token: refused */
    char t[8192];
    snprintf(t, sizeof t, "%s=", good);
    cr_expect_eq(verify(k, t, ROOM, sub), APPLICANT_MALFORMED);
    snprintf(t, sizeof t, " %s", good);
    cr_expect_eq(verify(k, t, ROOM, sub), APPLICANT_MALFORMED);
    /* a header that is not JSON */
    const char *nj =
        mint("not json", claims("a", 600, ROOM), SIG_HMAC, SECRET, strlen(SECRET), NULL);
    cr_expect_eq(verify(k, nj, ROOM, sub), APPLICANT_MALFORMED);
    /* too long */
    char *huge = malloc(APPLICANT_TOKEN_MAX + 2);
    memset(huge, 'a', APPLICANT_TOKEN_MAX + 1);
    huge[APPLICANT_TOKEN_MAX + 1] = '\0';
    cr_expect_eq(verify(k, huge, ROOM, sub), APPLICANT_MALFORMED);
    free(huge);
    applicant_key_free(k);
}

/* ---- claims ---- */

Test(applicant, expiry_allows_a_minute_of_skew)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *k = load("secret", SECRET, 0600);
    const char *s = SECRET;
    size_t sl = strlen(SECRET);
    cr_assert_eq(verify(k, mint(HS, claims("a", -120, ROOM), SIG_HMAC, s, sl, NULL), ROOM, sub),
                 APPLICANT_EXPIRED);
    cr_assert_eq(verify(k, mint(HS, claims("a", -30, ROOM), SIG_HMAC, s, sl, NULL), ROOM, sub),
                 APPLICANT_OK);
    char c[256];
    snprintf(c, sizeof c, "{\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", ROOM,
             (long long)now + 600, (long long)now + 300);
    cr_assert_eq(verify(k, mint(HS, c, SIG_HMAC, s, sl, NULL), ROOM, sub), APPLICANT_NOT_YET_VALID);
    snprintf(c, sizeof c, "{\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld}", ROOM,
             (long long)now + 600, (long long)now + 300);
    cr_assert_eq(verify(k, mint(HS, c, SIG_HMAC, s, sl, NULL), ROOM, sub), APPLICANT_NOT_YET_VALID);
    snprintf(c, sizeof c, "{\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld.5,\"nbf\":%lld}", ROOM,
             (long long)now + 600, (long long)now + 30);
    cr_assert_eq(verify(k, mint(HS, c, SIG_HMAC, s, sl, NULL), ROOM, sub), APPLICANT_OK);
    applicant_key_free(k);
}

Test(applicant, audience_must_name_the_room)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *k = load("secret", SECRET, 0600);
    const char *s = SECRET;
    size_t sl = strlen(SECRET);
    cr_assert_eq(verify(k, mint(HS, claims("a", 600, "other"), SIG_HMAC, s, sl, NULL), ROOM, sub),
                 APPLICANT_WRONG_AUDIENCE);
    char c[256];
    snprintf(c, sizeof c, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"x\",\"%s\"]}",
             (long long)now + 600, ROOM);
    cr_assert_eq(verify(k, mint(HS, c, SIG_HMAC, s, sl, NULL), ROOM, sub), APPLICANT_OK);
    snprintf(c, sizeof c, "{\"sub\":\"a\",\"exp\":%lld,\"aud\":[\"x\",3]}", (long long)now + 600);
    cr_assert_eq(verify(k, mint(HS, c, SIG_HMAC, s, sl, NULL), ROOM, sub),
                 APPLICANT_WRONG_AUDIENCE);
    applicant_key_free(k);
}

Test(applicant, missing_or_bad_claims_are_refused)
{
    char sub[APPLICANT_SUB_MAX + 1];
    struct applicant_key *k = load("secret", SECRET, 0600);
    char longsub[APPLICANT_SUB_MAX + 2];
    memset(longsub, 'x', sizeof longsub - 1);
    longsub[sizeof longsub - 1] = '\0';
    char c[7][512];
    long long e = (long long)now + 600;
    snprintf(c[0], sizeof c[0], "{\"exp\":%lld,\"aud\":\"%s\"}", e, ROOM);
    snprintf(c[1], sizeof c[1], "{\"sub\":\"a\",\"aud\":\"%s\"}", ROOM);
    snprintf(c[2], sizeof c[2], "{\"sub\":\"a\",\"exp\":%lld}", e);
    snprintf(c[3], sizeof c[3], "{\"sub\":\"\",\"exp\":%lld,\"aud\":\"%s\"}", e, ROOM);
    snprintf(c[4], sizeof c[4], "{\"sub\":7,\"exp\":%lld,\"aud\":\"%s\"}", e, ROOM);
    snprintf(c[5], sizeof c[5], "{\"sub\":\"a\",\"exp\":\"%lld\",\"aud\":\"%s\"}", e, ROOM);
    snprintf(c[6], sizeof c[6], "{\"sub\":\"%s\",\"exp\":%lld,\"aud\":\"%s\"}", longsub, e, ROOM);
    for (int i = 0; i < 7; i++)
        cr_expect_eq(verify(k, mint(HS, c[i], SIG_HMAC, SECRET, strlen(SECRET), NULL), ROOM, sub),
                     APPLICANT_BAD_CLAIMS, "%s", c[i]);
    /* claims that are not one plain JSON object: a NUL in a string, a claim given twice */
    char d[2][256];
    snprintf(d[0], sizeof d[0], "{\"sub\":\"a\\u0000b\",\"exp\":%lld,\"aud\":\"%s\"}", e, ROOM);
    snprintf(d[1], sizeof d[1], "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":%lld,\"aud\":\"%s\"}", e,
             ROOM);
    for (int i = 0; i < 2; i++)
        cr_expect_eq(verify(k, mint(HS, d[i], SIG_HMAC, SECRET, strlen(SECRET), NULL), ROOM, sub),
                     APPLICANT_MALFORMED, "%s", d[i]);
    applicant_key_free(k);
}

Test(applicant, results_have_stable_reasons_and_messages)
{
    cr_assert_str_eq(applicant_result_str(APPLICANT_EXPIRED), "expired");
    cr_assert_str_eq(applicant_result_str(APPLICANT_WRONG_ALG), "wrong_alg");
    cr_assert_str_eq(applicant_result_str(APPLICANT_WRONG_AUDIENCE), "wrong_audience");
    for (int rc = APPLICANT_MALFORMED; rc >= APPLICANT_WRONG_AUDIENCE; rc--) {
        const char *id, *en;
        applicant_result_msg(rc, &id, &en);
        cr_assert(id[0] && en[0], "rc %d has no message", rc);
        cr_assert_str_neq(applicant_result_str(rc), "unknown");
    }
}

/* ---- key files ---- */

Test(applicant, bad_key_files_are_refused_with_their_path)
{
    EVP_PKEY *pk = rsa_key(2048);
    load_fails("private.pem", pem_of(pk, 1), 0600, "holds a private key");
    EVP_PKEY_free(pk);
    pk = rsa_key(1024);
    load_fails("small.pem", pem_of(pk, 0), 0644, "RS256 needs at least 2048");
    EVP_PKEY_free(pk);
    pk = ec_key("P-384");
    load_fails("p384.pem", pem_of(pk, 0), 0644, "ES256 needs P-256");
    EVP_PKEY_free(pk);
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    load_fails("ed.pem", pem_of(pk, 0), 0644, "RS256 (RSA) or ES256");
    EVP_PKEY_free(pk);
    load_fails("broken.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 0644,
               "not a PEM public key");
    load_fails("short", "too-short\n", 0600, "HS256 needs at least 32");
    load_fails("shared", SECRET, 0640, "chmod 600");

    struct applicant_key *k = (struct applicant_key *)1;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope.pem", tmp);
    cr_assert_eq(applicant_key_load(missing, &k, err, sizeof err), -1);
    cr_assert(strstr(err, missing) == err && strstr(err, "cannot open"), "%s", err);
    cr_assert_eq(applicant_key_load(tmp, &k, err, sizeof err), -1);
    cr_assert(strstr(err, "not a regular file"), "%s", err);
    /* the secret itself is never in a reason */
    load_fails("leaky", "0123456789\n", 0644, "chmod 600");
    cr_assert_null(strstr(err, "0123456789\n"));
}

Test(applicant, check_conf_names_each_bad_room)
{
    static struct conf conf;
    conf_defaults(&conf);
    snprintf(conf.path, sizeof conf.path, "/etc/antre.conf");
    conf.nrooms = 2;
    snprintf(conf.rooms[0].name, sizeof conf.rooms[0].name, "good");
    snprintf(conf.rooms[0].applicant_key_file, CONF_STR, "%s",
             tmpdir_write(tmp, "secret", SECRET, 0600));
    snprintf(conf.rooms[1].name, sizeof conf.rooms[1].name, "bad");
    snprintf(conf.rooms[1].applicant_key_file, CONF_STR, "%s/missing.pem", tmp);
    char out[2048];
    cr_assert_eq(applicant_check_conf(&conf, out, sizeof out), -1);
    char want[512];
    snprintf(want, sizeof want,
             "/etc/antre.conf: [room.bad] applicant_key_file: %s/missing.pem: ", tmp);
    cr_assert(strstr(out, want) == out, "%s", out);
    cr_assert_null(strstr(out, "room.good"));
    conf.rooms[1].applicant_key_file[0] = '\0'; /* binding off: nothing to check */
    cr_assert_eq(applicant_check_conf(&conf, out, sizeof out), 0, "%s", out);
}

/* ---- binding hash ---- */

Test(applicant, hash_is_the_pepper_hmac_of_room_and_sub)
{
    const char *path = tmpdir_write(tmp, "keys", "pepper " PEPPER "\nk1 " PEPPER "\n", 0600);
    struct token_keys *keys = NULL;
    cr_assert_eq(token_keys_load(path, &keys, err, sizeof err), 0, "%s", err);
    uint8_t got[TOKEN_HMAC_BYTES], other[TOKEN_HMAC_BYTES], want[32];
    cr_assert_eq(applicant_hash(keys, ROOM, "alice", 5, got), 0);
    unsigned char pepper[32];
    for (int i = 0; i < 32; i++) sscanf(PEPPER + 2 * i, "%2hhx", &pepper[i]);
    unsigned int wl = 0;
    HMAC(EVP_sha256(), pepper, 32, (const unsigned char *)ROOM "\nalice", strlen(ROOM) + 6, want,
         &wl);
    cr_assert_eq(memcmp(got, want, 32), 0);
    cr_assert_eq(applicant_hash(keys, "other", "alice", 5, other), 0);
    cr_assert_neq(memcmp(got, other, 32), 0, "one sub must hash apart in two rooms");
    token_keys_free(keys);

    /* no pepper, no binding */
    path = tmpdir_write(tmp, "keys2", "k1 " PEPPER "\n", 0600);
    cr_assert_eq(token_keys_load(path, &keys, err, sizeof err), 0, "%s", err);
    cr_assert_eq(applicant_hash(keys, ROOM, "alice", 5, got), -1);
    token_keys_free(keys);
}
