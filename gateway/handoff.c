/* handoff.c: the redirect target of an admitted applicant ([room.NAME] continue_url) and the
 * signed hand-off token that carries the session to a registration site on another origin.
 *
 * Why a token in the fragment, and a key of its own: the fragment (after "#") stays in the
 * browser. It is not sent in the request for the site's page, so it shows in no access log, no
 * proxy and no Referer; the site's own script reads it, removes it from the address bar, and
 * gives it to the site's back end to verify. The key is a separate file because the site must
 * hold it: the gateway's secret_file signs every session and ticket and never leaves the
 * gateway. The token format is token.h's, so the site verifies one HMAC-SHA256 with the key its
 * kid names; docs/api.md has the contract.
 *
 * The keys are loaded per room by handoff_reload (start and SIGHUP), outside the request path;
 * signing a hand-off costs one HMAC and sends no Redis command. */
#include "handoff.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "antre/log.h"
#include "antre/token.h"

struct slot {
    char room[CONF_ROOM_NAME];
    char path[CONF_STR];
    struct token_keys *keys; /* NULL: none loaded (the hand-off fails) */
};

static struct slot slots[CONF_MAX_ROOMS];
static int nslots;

static struct slot *slot_of(const char *room)
{
    for (int i = 0; i < nslots; i++)
        if (!strcmp(slots[i].room, room)) return &slots[i];
    return NULL;
}

/* 1 when A and B name the same file (the same path, or the same inode once both exist). */
static int same_file(const char *a, const char *b)
{
    if (!strcmp(a, b)) return 1;
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

size_t handoff_origin(const char *continue_url, char *origin, size_t originlen)
{
    const char *sep = strstr(continue_url, "://");
    size_t n = 0;
    if (continue_url[0] != '/' && sep)
        n = (size_t)(sep + 3 - continue_url) + strcspn(sep + 3, "/?");
    if (originlen == 0) return 0;
    if (n >= originlen) n = 0; /* conf.c bounds the origin to 100 characters */
    memcpy(origin, continue_url, n);
    origin[n] = 0;
    return n;
}

int handoff_reload(const struct conf *conf)
{
    struct slot next[CONF_MAX_ROOMS];
    int n = 0, rc = 0;
    char origin[CONF_STR], err[512];
    for (int i = 0; i < conf->nrooms && n < CONF_MAX_ROOMS; i++) {
        const struct conf_room *r = &conf->rooms[i];
        if (!handoff_origin(r->continue_url, origin, sizeof origin)) continue;
        struct slot *s = &next[n++];
        memset(s, 0, sizeof *s);
        snprintf(s->room, sizeof s->room, "%s", r->name);
        snprintf(s->path, sizeof s->path, "%s", r->handoff_key_file);
        struct slot *old = slot_of(r->name);
        if (!r->handoff_key_file[0]) {
            snprintf(err, sizeof err, "no handoff_key_file");
        } else if (same_file(r->handoff_key_file, conf->gateway.secret_file)) {
            snprintf(err, sizeof err,
                     "%s is the gateway's secret_file, which must not leave the "
                     "gateway: give the hand-off a key file of its own",
                     r->handoff_key_file);
        } else if (token_keys_load(r->handoff_key_file, &s->keys, err, sizeof err) == 0) {
            log_info("handoff: keys loaded room=%s path=%s kid=%s", r->name, s->path,
                     token_keys_signing_kid(s->keys));
            continue;
        } else if (old && old->keys && !strcmp(old->path, s->path)) {
            s->keys = old->keys; /* a broken file on reload: keep signing with the keys in use */
            old->keys = NULL;
        }
        log_error("handoff: room=%s continue_url goes to another origin but its hand-off key is "
                  "not loaded%s: %s",
                  r->name, s->keys ? " (keeping the previous keys)" : "", err);
        rc = -1;
    }
    handoff_free();
    memcpy(slots, next, sizeof next[0] * (size_t)n);
    nslots = n;
    return rc;
}

void handoff_free(void)
{
    for (int i = 0; i < nslots; i++) token_keys_free(slots[i].keys);
    memset(slots, 0, sizeof slots);
    nslots = 0;
}

/* Sign the hand-off payload for AUD into TOK (TOKEN_BUF_SIZE). Its length, or -1 (logged). */
static int sign(const struct conf_room *room, const struct token_keys *keys, const char *aud,
                const char *session, size_t sessionlen, const char *sid, const char *owner,
                int64_t exp_s, int64_t now_s, char *tok)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s%, s:s, s:I, s:I}", "typ", "antre-handoff", "room",
                  room->name, "sid", sid, "owner", owner, "session", session, sessionlen, "aud",
                  aud, "iat", (json_int_t)now_s, "exp", (json_int_t)exp_s);
    if (!j) {
        log_error("handoff: room=%s payload could not be built", room->name);
        return -1;
    }
    char payload[TOKEN_PAYLOAD_MAX + 1];
    size_t len = json_dumpb(j, payload, sizeof payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    int n =
        len && len <= TOKEN_PAYLOAD_MAX ? token_sign(keys, payload, len, tok, TOKEN_BUF_SIZE) : -1;
    if (n < 0)
        log_error("handoff: room=%s token not signed (payload %zu bytes, at most %d)", room->name,
                  len, TOKEN_PAYLOAD_MAX);
    return n;
}

int handoff_location(const struct conf_room *room, const char *session, size_t sessionlen,
                     const char *sid, const char *owner, int64_t session_exp_s, int64_t now_s,
                     char *out, size_t outlen)
{
    char origin[CONF_STR];
    int n = -1;
    if (!room->continue_url[0]) {
        log_error("handoff: room=%s has no continue_url", room->name);
    } else if (!handoff_origin(room->continue_url, origin, sizeof origin)) {
        n = snprintf(out, outlen, "%s", room->continue_url);
    } else {
        const struct slot *s = slot_of(room->name);
        char tok[TOKEN_BUF_SIZE];
        int64_t exp = now_s + HANDOFF_TTL_S < session_exp_s ? now_s + HANDOFF_TTL_S : session_exp_s;
        if (!s || !s->keys)
            log_error("handoff: room=%s has no hand-off key loaded (see the error at load)",
                      room->name);
        else if (sign(room, s->keys, origin, session, sessionlen, sid, owner, exp, now_s, tok) >= 0)
            n = snprintf(out, outlen, "%s%s%s", room->continue_url, HANDOFF_FRAGMENT, tok);
    }
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen) out[0] = 0;
        return -1;
    }
    return n;
}
