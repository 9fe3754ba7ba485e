/* test_handoff.c: unit tests of the hand-off to the registration site (gateway/handoff.c) over
 * real key files in a mkdtemp directory.
 *
 * A token is checked as a site would check it from docs/api.md: split on dots, the MAC
 * recomputed with OpenSSL's one-shot HMAC() under the key the kid names (never with the code
 * under test), the payload decoded and read as JSON. */
#include "handoff.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "antre/codec.h"
#include "tmpdir.h"

#define HEX1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX2 "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
#define SESSION                                                                                    \
    "v1.k1.UXx3fGFiY2QxMjM0fDE3OTk5OTk5OTk5OTk.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SID "0123456789abcdef0123456789abcdef"
#define NOW 1800000000

static char tmp[TMPDIR_LEN];
static struct conf conf;

static void setup(void)
{
    tmpdir_make(tmp, "handoff");
    conf_defaults(&conf);
    snprintf(conf.gateway.secret_file, sizeof conf.gateway.secret_file, "%s",
             tmpdir_write(tmp, "secret", "k0 " HEX2 "\n", 0600));
    conf.nrooms = 2;
    struct conf_room *w = &conf.rooms[0], *s = &conf.rooms[1];
    snprintf(w->name, sizeof w->name, "w");
    snprintf(w->continue_url, sizeof w->continue_url, "https://daftar.example.go.id/formulir?x=1");
    snprintf(w->handoff_key_file, sizeof w->handoff_key_file, "%s",
             tmpdir_write(tmp, "handoff", "# shared with the site\nh1 " HEX1 "\nh0 " HEX2 "\n",
                          0600));
    snprintf(s->name, sizeof s->name, "s");
    snprintf(s->continue_url, sizeof s->continue_url, "/daftar");
}

static void teardown(void)
{
    handoff_free();
    tmpdir_remove(tmp);
}

TestSuite(handoff, .init = setup, .fini = teardown, .timeout = 60);

static int location(const struct conf_room *r, const char *session, int64_t exp_s, char *out)
{
    return handoff_location(r, session, strlen(session), SID, "", exp_s, NOW, out,
                            HANDOFF_LOCATION_MAX);
}

/* The token of LOC after PREFIX and the fragment, verified as a site would with KEY_HEX under
 * KID; returns its payload (json_decref it), or NULL when the MAC does not match. */
static json_t *site_verify(const char *loc, const char *prefix, const char *kid,
                           const char *key_hex)
{
    size_t pl = strlen(prefix), fl = strlen(HANDOFF_FRAGMENT);
    cr_assert(!strncmp(loc, prefix, pl), "%s", loc);
    cr_assert(!strncmp(loc + pl, HANDOFF_FRAGMENT, fl), "%s", loc);
    const char *tok = loc + pl + fl;
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    const char *d3 = d2 ? strchr(d2 + 1, '.') : NULL;
    cr_assert(d3 && !strchr(d3 + 1, '.'), "four parts: %s", tok);
    cr_assert(!strncmp(tok, "v1.", 3));
    cr_assert_eq((size_t)(d2 - d1 - 1), strlen(kid));
    cr_assert(!strncmp(d1 + 1, kid, strlen(kid)), "kid of %s", tok);
    uint8_t key[32], mac[32], want[32];
    cr_assert_eq(codec_hex_decode(key_hex, 64, key, sizeof key), 32);
    unsigned int wl = 0;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)tok, (size_t)(d3 - tok), want, &wl);
    cr_assert_eq(codec_b64url_decode(d3 + 1, strlen(d3 + 1), mac, sizeof mac), 32);
    if (CRYPTO_memcmp(mac, want, 32) != 0) return NULL;
    char payload[600];
    ssize_t n = codec_b64url_decode(d2 + 1, (size_t)(d3 - d2 - 1), payload, sizeof payload - 1);
    cr_assert_gt(n, 0);
    json_error_t je;
    json_t *j = json_loadb(payload, (size_t)n, 0, &je);
    cr_assert_not_null(j, "payload is not JSON: %.*s", (int)n, payload);
    return j;
}

Test(handoff, origin_of_a_continue_url)
{
    char o[128];
    cr_assert_eq(handoff_origin("https://daftar.example.go.id/formulir", o, sizeof o), 28);
    cr_assert_str_eq(o, "https://daftar.example.go.id");
    handoff_origin("http://127.0.0.1:8099?next=1", o, sizeof o);
    cr_assert_str_eq(o, "http://127.0.0.1:8099");
    handoff_origin("https://[::1]:8443", o, sizeof o);
    cr_assert_str_eq(o, "https://[::1]:8443");
    cr_assert_eq(handoff_origin("/daftar?from=https://x", o, sizeof o), 0);
    cr_assert_str_empty(o);
    cr_assert_eq(handoff_origin("", o, sizeof o), 0);
}

Test(handoff, same_origin_path_carries_no_token)
{
    cr_assert_eq(handoff_reload(&conf), 0);
    char loc[HANDOFF_LOCATION_MAX];
    cr_assert_eq(location(&conf.rooms[1], SESSION, NOW + 600, loc), 7);
    cr_assert_str_eq(loc, "/daftar");
}

Test(handoff, another_origin_gets_a_token_the_site_can_verify)
{
    cr_assert_eq(handoff_reload(&conf), 0);
    char loc[HANDOFF_LOCATION_MAX];
    int n = location(&conf.rooms[0], SESSION, NOW + 600, loc);
    cr_assert_gt(n, 0);
    cr_assert_eq((size_t)n, strlen(loc));
    json_t *j = site_verify(loc, "https://daftar.example.go.id/formulir?x=1", "h1", HEX1);
    cr_assert_not_null(j, "MAC under the first key of the hand-off file");
    cr_assert_str_eq(json_string_value(json_object_get(j, "typ")), "antre-handoff");
    cr_assert_str_eq(json_string_value(json_object_get(j, "room")), "w");
    cr_assert_str_eq(json_string_value(json_object_get(j, "sid")), SID);
    cr_assert_str_eq(json_string_value(json_object_get(j, "owner")), "");
    cr_assert_str_eq(json_string_value(json_object_get(j, "session")), SESSION);
    cr_assert_str_eq(json_string_value(json_object_get(j, "aud")), "https://daftar.example.go.id");
    cr_assert_eq(json_integer_value(json_object_get(j, "iat")), NOW);
    cr_assert_eq(json_integer_value(json_object_get(j, "exp")), NOW + HANDOFF_TTL_S);
    cr_assert_eq(json_object_size(j), 8);
    json_decref(j);
    /* Not under the gateway's own key. */
    cr_assert_null(site_verify(loc, "https://daftar.example.go.id/formulir?x=1", "h1", HEX2));
}

Test(handoff, expiry_is_never_after_the_session)
{
    cr_assert_eq(handoff_reload(&conf), 0);
    char loc[HANDOFF_LOCATION_MAX];
    cr_assert_gt(location(&conf.rooms[0], SESSION, NOW + 10, loc), 0);
    json_t *j = site_verify(loc, "https://daftar.example.go.id/formulir?x=1", "h1", HEX1);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "exp")), NOW + 10);
    json_decref(j);
}

Test(handoff, the_gateway_secret_file_is_refused_as_hand_off_key)
{
    snprintf(conf.rooms[0].handoff_key_file, sizeof conf.rooms[0].handoff_key_file, "%s",
             conf.gateway.secret_file);
    cr_assert_eq(handoff_reload(&conf), -1);
    char loc[HANDOFF_LOCATION_MAX];
    cr_assert_eq(location(&conf.rooms[0], SESSION, NOW + 600, loc), -1);
    cr_assert_str_empty(loc);
    /* The same-origin room is unaffected. */
    cr_assert_eq(location(&conf.rooms[1], SESSION, NOW + 600, loc), 7);
}

Test(handoff, a_broken_file_on_reload_keeps_the_keys_in_use_and_rotation_works)
{
    cr_assert_eq(handoff_reload(&conf), 0);
    tmpdir_write(tmp, "handoff", "h1 not-hex\n", 0600);
    cr_assert_eq(handoff_reload(&conf), -1);
    char loc[HANDOFF_LOCATION_MAX];
    cr_assert_gt(location(&conf.rooms[0], SESSION, NOW + 600, loc), 0);
    json_t *j = site_verify(loc, "https://daftar.example.go.id/formulir?x=1", "h1", HEX1);
    cr_assert_not_null(j);
    json_decref(j);
    /* A new first key signs from the next reload on. */
    tmpdir_write(tmp, "handoff", "h2 " HEX2 "\nh1 " HEX1 "\n", 0600);
    cr_assert_eq(handoff_reload(&conf), 0);
    cr_assert_gt(location(&conf.rooms[0], SESSION, NOW + 600, loc), 0);
    j = site_verify(loc, "https://daftar.example.go.id/formulir?x=1", "h2", HEX2);
    cr_assert_not_null(j);
    json_decref(j);
}

Test(handoff, a_room_without_keys_or_with_a_payload_too_large_fails)
{
    char loc[HANDOFF_LOCATION_MAX];
    cr_assert_eq(location(&conf.rooms[0], SESSION, NOW + 600, loc), -1, "nothing loaded yet");
    cr_assert_eq(handoff_reload(&conf), 0);
    char big[480];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_eq(location(&conf.rooms[0], big, NOW + 600, loc), -1);
    cr_assert_str_empty(loc);
    conf.rooms[0].continue_url[0] = 0;
    cr_assert_eq(location(&conf.rooms[0], SESSION, NOW + 600, loc), -1);
}
