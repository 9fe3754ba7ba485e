/* wroom_ticket.c: the waiting room's tokens (tickets, pre-queue tickets, sessions; their
 * payloads are described in wroom_priv.h): signing them with the applicant's mark, verifying
 * and parsing them, finding them in a request (Bearer or cookie) and setting their cookies. */
#include "wroom_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "antre/clock.h"
#include "antre/codec.h"
#include "antre/token.h"
#include "conn.h"
#include "gate.h"
#include "gateway.h"
#include "reply.h"
#include "request.h"

static int sign(struct gw *gw, const char *payload, char *out, size_t outlen)
{
    return token_sign(gw->keys, payload, strlen(payload), out, outlen);
}

int wroom_ticket_sign(struct conn *c, char kind, const char *room, uint64_t num, char *out,
                      size_t outlen)
{
    char p[128];
    const char *a = gate_ctx(c)->applicant;
    snprintf(p, sizeof p, "%c|%s|%llu|%lld%s%s", kind, room, (unsigned long long)num,
             (long long)(clock_wall_ms() / 1000), a[0] ? "|" : "", a);
    return sign(c->gw, p, out, outlen);
}

int wroom_ticket_sign_session(struct conn *c, const char *room, const char *sid, int64_t exp_ms,
                              char *out, size_t outlen)
{
    char p[160];
    snprintf(p, sizeof p, "S|%s|%s|%lld%s%s", room, sid, (long long)exp_ms,
             gate_ctx(c)->applicant[0] ? "|" : "", gate_ctx(c)->applicant);
    return sign(c->gw, p, out, outlen);
}

/* Copy the LEN bytes at SRC into DST (CAP bytes) as a string; -1 when they do not fit. */
static int copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap) return -1;
    memcpy(dst, src, len);
    dst[len] = 0;
    return 0;
}

/* Verify TOK and parse its payload "kind|room|a|b[|owner]" into T. 0 ok, -1 invalid. This runs
 * on every status poll, so it splits the fields in place rather than through stdio. */
int wroom_ticket_parse(struct gw *gw, const char *tok, size_t len, struct ticket *t)
{
    char p[TOKEN_PAYLOAD_MAX];
    size_t plen;
    if (!tok || token_verify(gw->keys, tok, len, p, sizeof p, &plen) < 0) return -1;
    const char *f[5];
    size_t fl[5], n = 0, start = 0;
    for (size_t i = 0; i <= plen; i++) {
        if (i < plen && p[i] != '|') continue;
        if (n == 5) return -1;
        f[n] = p + start;
        fl[n++] = i - start;
        start = i + 1;
    }
    if (n < 4 || fl[0] != 1 || fl[1] == 0) return -1;
    uint64_t a, b;
    if (copy_field(t->room, sizeof t->room, f[1], fl[1]) < 0 ||
        copy_field(t->owner, sizeof t->owner, n == 5 ? f[4] : "", n == 5 ? fl[4] : 0) < 0 ||
        codec_decimal_u64(f[3], fl[3], &b) < 0 || b > INT64_MAX)
        return -1;
    t->kind = f[0][0];
    t->t = (int64_t)b;
    if (t->kind == TK_SESSION) return copy_field(t->sid, sizeof t->sid, f[2], fl[2]);
    if ((t->kind != TK_PLACE && t->kind != TK_PRE) || codec_decimal_u64(f[2], fl[2], &a) < 0)
        return -1;
    t->num = a;
    return 0;
}

const char *wroom_ticket_token(struct request *r, const char *cookie, size_t *len)
{
    size_t n;
    const char *v = request_header(r, "authorization", &n);
    if (v && n > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        *len = n - 7;
        return v + 7;
    }
    v = request_header(r, "cookie", &n);
    size_t cl = strlen(cookie);
    for (const char *p = v, *end = v + n; p && p < end;) {
        while (p < end && (*p == ' ' || *p == ';')) p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if ((size_t)(stop - p) > cl && memcmp(p, cookie, cl) == 0 && p[cl] == '=') {
            *len = (size_t)(stop - p - (ptrdiff_t)cl - 1);
            return p + cl + 1;
        }
        p = semi ? semi + 1 : end;
    }
    return NULL;
}

void wroom_ticket_cookie(struct conn *c, const char *name, const char *value, int max_age_s)
{
    char v[TOKEN_BUF_SIZE + 128];
    snprintf(v, sizeof v, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", name, value,
             max_age_s, conn_https(c) ? "; Secure" : "");
    reply_header(c, "Set-Cookie", v);
}

/* Parse a session record "sid:expiry_ms" (room.lua) into SID (33 bytes) and *EXP. -1 when
 * REC is not one (e.g. "left"). */
int wroom_ticket_session_record(const char *rec, char sid[33], int64_t *exp)
{
    const char *colon = strchr(rec, ':');
    size_t sl = colon ? (size_t)(colon - rec) : 0;
    if (!colon || sl == 0 || sl >= 33) return -1;
    memcpy(sid, rec, sl);
    sid[sl] = 0;
    *exp = strtoll(colon + 1, NULL, 10);
    return 0;
}
