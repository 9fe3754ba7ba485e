/* proxy.c: the PROXY protocol header, X-Forwarded-For and X-Forwarded-Proto (see proxy.h).
 *
 * The PROXY protocol is HAProxy's (doc/proxy-protocol.txt in its sources): a v1 header is one
 * text line "PROXY TCP4 SRC DST SPORT DPORT\r\n" of at most 107 bytes; a v2 header is a 12-byte
 * signature, a version/command byte, a family/protocol byte, a 16-bit length and that many bytes
 * of addresses and TLVs. Both are decided as early as their bytes allow: a connection whose first
 * byte cannot start either is refused without waiting for more. */
#include "proxy.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "antre/clock.h"
#include "antre/log.h"
#include "request.h"

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static enum proxy_result invalid(const char **why, const char *reason)
{
    *why = reason;
    return PROXY_INVALID;
}

/* A decimal port: 1-5 digits, no leading zero, at most 65535. */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Fill *OUT from an IPv4 (FAMILY AF_INET, 4 bytes) or IPv6 (16 bytes) address and a port in
 * host order. */
static void set_addr(struct sockaddr_in6 *out, int family, const void *addr, uint16_t port)
{
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)out;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, addr, 4);
        s4->sin_port = htons(port);
    } else {
        out->sin6_family = AF_INET6;
        memcpy(&out->sin6_addr, addr, 16);
        out->sin6_port = htons(port);
    }
}

/* LINE (N bytes, no CRLF) after "PROXY ": "TCP4 SRC DST SPORT DPORT", "TCP6 ..." or "UNKNOWN...".
 * Fields are separated by exactly one space. */
static enum proxy_result parse_v1_line(const char *line, size_t n, struct proxy_header *out,
                                       const char **why)
{
    if (n >= 7 && !memcmp(line, "UNKNOWN", 7) && (n == 7 || line[7] == ' ')) {
        out->has_addr = 0;
        return PROXY_OK;
    }
    const char *f[5];
    size_t fl[5];
    int nf = 0;
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i < n && line[i] != ' ') continue;
        if (nf == 5 || i == start) return invalid(why, "v1: not five fields separated by spaces");
        f[nf] = line + start;
        fl[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 5) return invalid(why, "v1: not five fields separated by spaces");
    int family;
    if (fl[0] == 4 && !memcmp(f[0], "TCP4", 4)) family = AF_INET;
    else if (fl[0] == 4 && !memcmp(f[0], "TCP6", 4)) family = AF_INET6;
    else return invalid(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
    char text[INET6_ADDRSTRLEN];
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    for (int i = 1; i <= 2; i++) {
        if (fl[i] >= sizeof text) return invalid(why, "v1: bad address");
        memcpy(text, f[i], fl[i]);
        text[fl[i]] = 0;
        if (inet_pton(family, text, i == 1 ? src : dst) != 1)
            return invalid(why, "v1: bad address");
    }
    if (parse_port(f[3], fl[3], &sport) < 0 || parse_port(f[4], fl[4], &dport) < 0)
        return invalid(why, "v1: bad port");
    set_addr(&out->src, family, src, sport);
    out->has_addr = 1;
    return PROXY_OK;
}

static enum proxy_result parse_v1(const uint8_t *buf, size_t len, struct proxy_header *out,
                                  const char **why)
{
    static const char sig[] = "PROXY ";
    size_t n = len < 6 ? len : 6;
    if (memcmp(buf, sig, n) != 0) return invalid(why, "neither a v1 nor a v2 PROXY header");
    size_t lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    for (size_t i = 6; i < lim; i++) {
        uint8_t ch = buf[i];
        if (ch == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n') return invalid(why, "v1: CR without LF");
            if (i + 1 >= lim) break; /* the LF is still to come, or beyond the bound */
            out->len = i + 2;
            return parse_v1_line((const char *)buf + 6, i - 6, out, why);
        }
        if (ch < 0x20 || ch > 0x7e) return invalid(why, "v1: a control or non-ASCII byte");
    }
    if (len >= PROXY_V1_MAX) return invalid(why, "v1: longer than 107 bytes");
    return PROXY_MORE;
}

static enum proxy_result parse_v2(const uint8_t *buf, size_t len, struct proxy_header *out,
                                  const char **why)
{
    size_t n = len < 12 ? len : 12;
    if (memcmp(buf, v2_sig, n) != 0) return invalid(why, "neither a v1 nor a v2 PROXY header");
    if (len < 16) return PROXY_MORE;
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
    unsigned fam = buf[13] >> 4, proto = buf[13] & 0x0f;
    size_t alen = ((size_t)buf[14] << 8) | buf[15];
    if (ver != 2) return invalid(why, "v2: version is not 2");
    if (cmd > 1) return invalid(why, "v2: command is neither LOCAL nor PROXY");
    if (alen > PROXY_V2_MAX_LEN) return invalid(why, "v2: address block longer than 1024 bytes");
    if (len < 16 + alen) return PROXY_MORE;
    out->len = 16 + alen;
    out->has_addr = 0;
    if (cmd == 0) return PROXY_OK; /* LOCAL: the balancer's own connection (a health check) */
    if (fam == 0) return PROXY_OK; /* UNSPEC: the balancer does not know; keep the peer */
    if (proto != 1) return invalid(why, "v2: transport is not TCP");
    const uint8_t *a = buf + 16;
    if (fam == 1) {
        if (alen < 12) return invalid(why, "v2: IPv4 address block too short");
        set_addr(&out->src, AF_INET, a, (uint16_t)((a[8] << 8) | a[9]));
    } else if (fam == 2) {
        if (alen < 36) return invalid(why, "v2: IPv6 address block too short");
        set_addr(&out->src, AF_INET6, a, (uint16_t)((a[32] << 8) | a[33]));
    } else {
        return invalid(why, "v2: address family is not IPv4 or IPv6");
    }
    out->has_addr = 1;
    return PROXY_OK;
}

enum proxy_result proxy_parse(const uint8_t *buf, size_t len, struct proxy_header *out,
                              const char **why)
{
    *why = "";
    if (len == 0) return PROXY_MORE;
    if (buf[0] == v2_sig[0]) return parse_v2(buf, len, out, why);
    return parse_v1(buf, len, out, why);
}

/* One X-Forwarded-For element S (N bytes): 1 with the address in *OUT, 0 when empty, -1 when
 * it is not an address. */
static int parse_hop(const char *s, size_t n, struct sockaddr_in6 *out)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n == 0) return 0;
    char text[INET6_ADDRSTRLEN + 8];
    size_t alen = n;
    const char *a = s;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        uint16_t port;
        if (!close) return -1;
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest && (close[1] != ':' || parse_port(close + 2, rest - 1, &port) < 0)) return -1;
        a = s + 1;
        alen = (size_t)(close - a);
    } else {
        const char *colon = memchr(s, ':', n);
        uint16_t port;
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            /* one colon: IPv4:port */
            if (parse_port(colon + 1, n - (size_t)(colon + 1 - s), &port) < 0) return -1;
            alen = (size_t)(colon - s);
        }
    }
    if (alen == 0 || alen >= sizeof text) return -1;
    memcpy(text, a, alen);
    text[alen] = 0;
    uint8_t addr[16];
    if (inet_pton(AF_INET, text, addr) == 1) set_addr(out, AF_INET, addr, 0);
    else if (inet_pton(AF_INET6, text, addr) == 1) set_addr(out, AF_INET6, addr, 0);
    else return -1;
    return 1;
}

static void copy_src(struct sockaddr_in6 *out, const struct sockaddr *src)
{
    memset(out, 0, sizeof *out);
    if (src->sa_family == AF_INET) memcpy(out, src, sizeof(struct sockaddr_in));
    else if (src->sa_family == AF_INET6) memcpy(out, src, sizeof(struct sockaddr_in6));
    else out->sin6_family = src->sa_family;
}

int proxy_xff_client(const struct cidr_list *trusted, const struct sockaddr *src,
                     const struct proxy_span *vals, int n, struct sockaddr_in6 *out)
{
    copy_src(out, src);
    if (trusted->n == 0 || !cidr_list_match(trusted, src)) return 0;
    int moved = 0;
    for (int i = n - 1; i >= 0; i--) {
        const char *s = vals[i].p;
        size_t end = vals[i].len;
        for (;;) {
            size_t start = end;
            while (start > 0 && s[start - 1] != ',') start--;
            struct sockaddr_in6 hop;
            int rc = parse_hop(s + start, end - start, &hop);
            if (rc < 0) return moved; /* stop at the last trusted hop reached */
            if (rc > 0) {
                *out = hop;
                moved = 1;
                if (!cidr_list_match(trusted, (const struct sockaddr *)&hop)) return 1;
            }
            if (start == 0) break;
            end = start - 1;
        }
    }
    return moved;
}

int proxy_xfp_https(const struct proxy_span *vals, int n)
{
    for (int i = 0; i < n; i++) {
        const char *s = vals[i].p, *end = s + vals[i].len;
        while (s < end) {
            const char *comma = memchr(s, ',', (size_t)(end - s));
            const char *e = comma ? comma : end;
            while (s < e && (*s == ' ' || *s == '\t')) s++;
            const char *t = e;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
            if (t - s == 5 && !strncasecmp(s, "https", 5)) return 1;
            s = comma ? comma + 1 : end;
        }
    }
    return 0;
}

#define XFF_HEADERS 16

/* The values of R's headers named NAME into VALS (the last XFF_HEADERS of them, in order). */
static int gather(const struct request *r, const char *name, struct proxy_span *vals)
{
    struct proxy_span ring[XFF_HEADERS];
    int pos = 0, total = 0;
    size_t len;
    const char *v;
    while ((v = request_header_next(r, name, &pos, &len)) != NULL) {
        ring[total % XFF_HEADERS] = (struct proxy_span){v, len};
        total++;
    }
    int n = total < XFF_HEADERS ? total : XFF_HEADERS;
    for (int i = 0; i < n; i++) vals[i] = ring[(total - n + i) % XFF_HEADERS];
    return n;
}

int proxy_request_client(const struct cidr_list *trusted, const struct sockaddr *src,
                         const struct request *r, struct sockaddr_in6 *out, int *https)
{
    *https = 0;
    if (trusted->n == 0 || !cidr_list_match(trusted, src)) {
        copy_src(out, src);
        return 0;
    }
    struct proxy_span vals[XFF_HEADERS];
    int n = gather(r, "x-forwarded-proto", vals);
    *https = proxy_xfp_https(vals, n);
    n = gather(r, "x-forwarded-for", vals);
    return proxy_xff_client(trusted, src, vals, n, out);
}

void proxy_log_refused(const char *peer, const char *why)
{
    static uint64_t last_warn_ns;
    static unsigned long suppressed;
    log_debug("proxy: PROXY header refused peer=%s reason=\"%s\"", peer, why);
    uint64_t now = clock_now_ns();
    if (last_warn_ns && now - last_warn_ns < 60ull * 1000000000ull) {
        suppressed++;
        return;
    }
    log_warn("proxy: PROXY header refused peer=%s reason=\"%s\" refused_since_last=%lu", peer, why,
             suppressed);
    last_warn_ns = now;
    suppressed = 0;
}
