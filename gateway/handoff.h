/* handoff.h: where an admitted applicant goes on ([room.NAME] continue_url), and the signed
 * hand-off token that carries the session there when the registration site is another origin.
 *
 * A same-origin continue_url (a path, "/daftar") needs nothing: the browser sends the
 * antre_session cookie itself. For another origin ("https://daftar.example.go.id/formulir") the
 * redirect target is the URL followed by "#antre_handoff=<token>", the token signed with the
 * first key of the room's handoff_key_file (a key file as keyfile.h describes, shared with the
 * site, never the gateway's secret_file) in the format of token.h:
 *
 *     v1.<kid>.<base64url(payload)>.<base64url(HMAC-SHA256(key, "v1.<kid>.<payload>"))>
 *
 * where the payload is compact JSON with, in this order: "typ" ("antre-handoff"), "room",
 * "sid" (the session id, 32 hex), "owner" (the applicant's 16-hex mark, or ""), "session" (the
 * session token itself, for the site to call the API with), "aud" (the continue_url's origin,
 * as browsers write location.origin), "iat" and "exp" (Unix seconds; exp is iat + HANDOFF_TTL_S,
 * or the session's own expiry when sooner). docs/api.md, "Hand-off to the registration site", is
 * the contract sites verify against. */
#ifndef ANTRE_HANDOFF_H
#define ANTRE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#include "antre/conf.h"

#define HANDOFF_TTL_S 60                   /* a hand-off token's life, in seconds */
#define HANDOFF_FRAGMENT "#antre_handoff=" /* what follows continue_url, then the token */
#define HANDOFF_LOCATION_MAX 1280          /* holds any redirect target handoff_location makes */

/* Load the hand-off keys of every room of CONF whose continue_url is another origin (from its
 * handoff_key_file, created when missing as keyfile_load does). Blocks (file I/O): call at start
 * and on reload, never while answering. A room whose file cannot be loaded keeps the keys it had
 * when the path did not change (a reload that breaks the file does not break the hand-off), else
 * it has none and its hand-offs fail. A key file that is the gateway's own secret_file is
 * refused. Errors are logged, naming the room and the file, never key material.
 *
 * Returns 0, or -1 when some room's keys could not be loaded. */
int handoff_reload(const struct conf *conf);

/* Free every loaded key (shutdown). */
void handoff_free(void);

/* The origin of CONTINUE_URL ("https://host[:port]") into ORIGIN (ORIGINLEN bytes, NUL
 * terminated). Returns its length, or 0 (ORIGIN "") for a same-origin path or an empty URL. The
 * URL is one conf.c accepted, so the origin is already written as browsers write it. */
size_t handoff_origin(const char *continue_url, char *origin, size_t originlen);

/* Where ROOM's admitted applicant goes: its continue_url alone when that is a path, else the
 * URL, HANDOFF_FRAGMENT and a token carrying SESSION (the signed session token, SESSIONLEN
 * bytes), SID, OWNER ("" when none) and the session's expiry SESSION_EXP_S, issued at NOW_S.
 *
 * OUT receives the target, NUL terminated (HANDOFF_LOCATION_MAX bytes always suffice). Returns
 * its length, or -1 (logged) when the room has no continue_url, no loaded key, or the payload is
 * too large to sign. */
int handoff_location(const struct conf_room *room, const char *session, size_t sessionlen,
                     const char *sid, const char *owner, int64_t session_exp_s, int64_t now_s,
                     char *out, size_t outlen);

#endif
