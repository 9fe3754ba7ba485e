/* test_proxy.c: unit tests of the client address behind a load balancer: the PROXY protocol
 * parser and the X-Forwarded-For walk (gateway/proxy.c), and address block lists
 * (common/cidr.c). Every PROXY case is also fed byte by byte: each proper prefix of a good
 * header must ask for more, never decide. */
#include "proxy.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "request.h"

/* A socket address for the text S, IPv4 or IPv6. */
static struct sockaddr_in6 addr(const char *s)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *in = (struct sockaddr_in *)&a;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1) in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, s, &a.sin6_addr) == 1) a.sin6_family = AF_INET6;
    else cr_assert_fail("bad test address %s", s);
    return a;
}

static const char *text(const struct sockaddr_in6 *a, char *buf, size_t len)
{
    if (a->sin6_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, buf, len);
    return inet_ntop(AF_INET6, &a->sin6_addr, buf, len);
}

static int port_of(const struct sockaddr_in6 *a)
{
    return ntohs(a->sin6_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                           : a->sin6_port);
}

static struct cidr_list list(const char *s)
{
    struct cidr_list l;
    char err[200] = "";
    cr_assert_eq(cidr_list_parse(s, &l, err, sizeof err), 0, "%s: %s", s, err);
    return l;
}

static int in_list(const char *l, const char *a)
{
    struct cidr_list cl = list(l);
    struct sockaddr_in6 sa = addr(a);
    return cidr_list_match(&cl, (const struct sockaddr *)&sa);
}

/* Parse BUF (LEN) whole, after checking that every proper prefix asks for more. */
static enum proxy_result parse_all(const void *buf, size_t len, struct proxy_header *h,
                                   const char **why)
{
    for (size_t i = 0; i < len; i++) {
        enum proxy_result r = proxy_parse(buf, i, h, why);
        if (r != PROXY_MORE) return r; /* decided early: must be invalid (checked by callers) */
    }
    return proxy_parse(buf, len, h, why);
}

static void v1_ok(const char *line, const char *src, int port)
{
    struct proxy_header h;
    const char *why;
    size_t n = strlen(line);
    /* with the start of an HTTP request behind it, which is not consumed */
    char buf[256];
    snprintf(buf, sizeof buf, "%sGET / HTTP/1.1\r\n", line);
    cr_assert_eq(parse_all(line, n, &h, &why), PROXY_OK, "%s: %s", line, why);
    cr_assert_eq(proxy_parse((const uint8_t *)buf, strlen(buf), &h, &why), PROXY_OK);
    cr_assert_eq(h.len, n);
    if (!src) {
        cr_assert_eq(h.has_addr, 0);
        return;
    }
    char t[INET6_ADDRSTRLEN];
    cr_assert_eq(h.has_addr, 1);
    cr_assert_str_eq(text(&h.src, t, sizeof t), src);
    cr_assert_eq(port_of(&h.src), port);
}

static void v1_bad(const char *line)
{
    struct proxy_header h;
    const char *why = NULL;
    cr_assert_eq(parse_all(line, strlen(line), &h, &why), PROXY_INVALID, "%s accepted", line);
    cr_assert(why && why[0]);
}

Test(proxy, v1_good)
{
    v1_ok("PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n", "192.0.2.7", 56324);
    v1_ok("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n", "2001:db8::7", 1);
    v1_ok("PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n", "0.0.0.0", 0);
    v1_ok("PROXY UNKNOWN\r\n", NULL, 0);
    v1_ok("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", NULL, 0);
    /* the longest: 107 bytes */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    cr_assert_eq(strlen(longest), 104);
    v1_ok(longest, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

Test(proxy, v1_bad)
{
    v1_bad("GET / HTTP/1.1\r\n\r\n");
    v1_bad("proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n");
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n");       /* bare LF */
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 1 2\rX\n");    /* CR not followed by LF */
    v1_bad("PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n");    /* two spaces */
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n");       /* four fields */
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 1 2 3\r\n");   /* six fields */
    v1_bad("PROXY TCP4 2001:db8::1 1.2.3.5 1 2\r\n"); /* IPv6 under TCP4 */
    v1_bad("PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n"); /* IPv4 under TCP6 */
    v1_bad("PROXY TCP4 1.2.3.256 1.2.3.5 1 2\r\n");
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n");
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n"); /* leading zero */
    v1_bad("PROXY TCP4 1.2.3.4 1.2.3.5 -1 2\r\n");
    v1_bad("PROXY UDP4 1.2.3.4 1.2.3.5 1 2\r\n");
    v1_bad("PROXY \r\n");
    v1_bad("PROXY TCP4 1.2.3.4\x01 1.2.3.5 1 2\r\n");
    v1_bad("PROXY UNKNOWNX\r\n");
}

Test(proxy, v1_oversized_and_truncated)
{
    struct proxy_header h;
    const char *why;
    char buf[200];
    /* 106 bytes of line without its end: still undecided; the 107th not a CR: invalid */
    memset(buf, 'A', sizeof buf);
    memcpy(buf, "PROXY UNKNOWN ", 14);
    cr_assert_eq(proxy_parse((uint8_t *)buf, 106, &h, &why), PROXY_MORE);
    cr_assert_eq(proxy_parse((uint8_t *)buf, 107, &h, &why), PROXY_INVALID);
    cr_assert_eq(proxy_parse((uint8_t *)buf, sizeof buf, &h, &why), PROXY_INVALID);
    /* a line whose CRLF would end at byte 108 */
    buf[105] = '\r';
    buf[106] = '\n';
    cr_assert_eq(proxy_parse((uint8_t *)buf, 107, &h, &why), PROXY_OK);
    buf[105] = 'A';
    buf[106] = '\r';
    buf[107] = '\n';
    cr_assert_eq(proxy_parse((uint8_t *)buf, 108, &h, &why), PROXY_INVALID);
    /* truncated */
    cr_assert_eq(proxy_parse((uint8_t *)"PROXY TCP4 1.2.3.4", 18, &h, &why), PROXY_MORE);
    cr_assert_eq(proxy_parse((uint8_t *)"PRO", 3, &h, &why), PROXY_MORE);
    cr_assert_eq(proxy_parse((uint8_t *)"", 0, &h, &why), PROXY_MORE);
    cr_assert_eq(proxy_parse((uint8_t *)"PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r", 31, &h, &why),
                 PROXY_MORE);
}

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: VERCMD, FAMPROTO, then ALEN bytes of BODY (zero-filled past BODYLEN). */
static size_t v2(uint8_t *out, uint8_t vercmd, uint8_t famproto, size_t alen, const uint8_t *body,
                 size_t bodylen)
{
    memcpy(out, sig, 12);
    out[12] = vercmd;
    out[13] = famproto;
    out[14] = (uint8_t)(alen >> 8);
    out[15] = (uint8_t)alen;
    memset(out + 16, 0, alen);
    memcpy(out + 16, body, bodylen < alen ? bodylen : alen);
    return 16 + alen;
}

Test(proxy, v2_good)
{
    uint8_t buf[2048], body[64];
    struct proxy_header h;
    const char *why;
    char t[INET6_ADDRSTRLEN];

    /* TCP over IPv4: src, dst, sport, dport; with a TLV behind (skipped) */
    memcpy(body, (uint8_t[]){192, 0, 2, 9, 10, 0, 0, 1, 0xdc, 0x05, 0x01, 0xbb}, 12);
    memcpy(body + 12, (uint8_t[]){0x04, 0x00, 0x02, 'x', 'y'}, 5);
    size_t n = v2(buf, 0x21, 0x11, 17, body, 17);
    cr_assert_eq(parse_all(buf, n, &h, &why), PROXY_OK, "%s", why);
    cr_assert_eq(h.len, n);
    cr_assert_eq(h.has_addr, 1);
    cr_assert_str_eq(text(&h.src, t, sizeof t), "192.0.2.9");
    cr_assert_eq(port_of(&h.src), 0xdc05);
    /* HTTP bytes behind it are not consumed */
    memcpy(buf + n, "GET /", 5);
    cr_assert_eq(proxy_parse(buf, n + 5, &h, &why), PROXY_OK);
    cr_assert_eq(h.len, n);

    /* TCP over IPv6 */
    struct in6_addr a6;
    inet_pton(AF_INET6, "2001:db8::42", &a6);
    memset(body, 0, sizeof body);
    memcpy(body, &a6, 16);
    body[32] = 0x30;
    body[33] = 0x39;
    n = v2(buf, 0x21, 0x21, 36, body, 36);
    cr_assert_eq(parse_all(buf, n, &h, &why), PROXY_OK, "%s", why);
    cr_assert_eq(h.has_addr, 1);
    cr_assert_str_eq(text(&h.src, t, sizeof t), "2001:db8::42");
    cr_assert_eq(port_of(&h.src), 12345);

    /* LOCAL (a health check of the balancer): keep the peer, whatever follows */
    n = v2(buf, 0x20, 0x00, 0, body, 0);
    cr_assert_eq(parse_all(buf, n, &h, &why), PROXY_OK);
    cr_assert_eq(h.has_addr, 0);
    cr_assert_eq(h.len, 16);
    n = v2(buf, 0x20, 0x11, 12, body, 12);
    cr_assert_eq(parse_all(buf, n, &h, &why), PROXY_OK);
    cr_assert_eq(h.has_addr, 0);
    cr_assert_eq(h.len, 28);

    /* PROXY with UNSPEC: keep the peer */
    n = v2(buf, 0x21, 0x00, 0, body, 0);
    cr_assert_eq(parse_all(buf, n, &h, &why), PROXY_OK);
    cr_assert_eq(h.has_addr, 0);

    /* the largest address block accepted */
    n = v2(buf, 0x21, 0x11, PROXY_V2_MAX_LEN, body, 12);
    cr_assert_eq(n, PROXY_HEADER_MAX);
    cr_assert_eq(proxy_parse(buf, n - 1, &h, &why), PROXY_MORE);
    cr_assert_eq(proxy_parse(buf, n, &h, &why), PROXY_OK);
    cr_assert_eq(h.len, PROXY_HEADER_MAX);
}

static void v2_bad(uint8_t vercmd, uint8_t famproto, size_t alen)
{
    uint8_t buf[2048], body[64] = {1, 2, 3, 4};
    struct proxy_header h;
    const char *why = NULL;
    size_t n = v2(buf, vercmd, famproto, alen, body, sizeof body);
    cr_assert_eq(proxy_parse(buf, n, &h, &why), PROXY_INVALID, "%02x %02x %zu accepted", vercmd,
                 famproto, alen);
    cr_assert(why && why[0]);
}

Test(proxy, v2_bad_and_oversized)
{
    v2_bad(0x11, 0x11, 12);                   /* version 1 */
    v2_bad(0x31, 0x11, 12);                   /* version 3 */
    v2_bad(0x22, 0x11, 12);                   /* command 2 */
    v2_bad(0x21, 0x11, 11);                   /* IPv4 block too short */
    v2_bad(0x21, 0x21, 35);                   /* IPv6 block too short */
    v2_bad(0x21, 0x12, 12);                   /* UDP */
    v2_bad(0x21, 0x31, 216);                  /* AF_UNIX */
    v2_bad(0x21, 0x41, 12);                   /* unknown family */
    v2_bad(0x21, 0x11, PROXY_V2_MAX_LEN + 1); /* oversized: refused from its length alone */
    uint8_t buf[16];
    struct proxy_header h;
    const char *why;
    memcpy(buf, sig, 12);
    buf[12] = 0x21;
    buf[13] = 0x11;
    buf[14] = 0xff;
    buf[15] = 0xff;
    cr_assert_eq(proxy_parse(buf, 16, &h, &why), PROXY_INVALID);
    /* a wrong signature byte, wherever it is */
    for (int i = 0; i < 12; i++) {
        memcpy(buf, sig, 12);
        buf[i] ^= 0x40;
        cr_assert_eq(proxy_parse(buf, 12, &h, &why), PROXY_INVALID, "byte %d", i);
        cr_assert_eq(proxy_parse(buf, (size_t)i + 1, &h, &why), PROXY_INVALID, "byte %d", i);
    }
    /* truncated: a good start asks for more */
    cr_assert_eq(proxy_parse(sig, 12, &h, &why), PROXY_MORE);
    cr_assert_eq(proxy_parse(sig, 5, &h, &why), PROXY_MORE);
}

Test(proxy, cidr_edges)
{
    cr_assert(in_list("10.0.0.0/8", "10.255.255.255"));
    cr_assert(!in_list("10.0.0.0/8", "11.0.0.0"));
    cr_assert(in_list("0.0.0.0/0", "203.0.113.5"));
    cr_assert(!in_list("0.0.0.0/0", "2001:db8::1")); /* IPv4 blocks match IPv4 only */
    cr_assert(in_list("::/0", "2001:db8::1"));
    cr_assert(!in_list("::/0", "203.0.113.5"));
    cr_assert(in_list("127.0.0.1/32", "127.0.0.1"));
    cr_assert(!in_list("127.0.0.1/32", "127.0.0.2"));
    cr_assert(in_list("127.0.0.1", "127.0.0.1")); /* a bare address is one host */
    cr_assert(in_list("::1/128", "::1"));
    cr_assert(!in_list("::1/128", "::2"));
    cr_assert(in_list("::1", "::1"));
    cr_assert(in_list("192.168.1.128/25", "192.168.1.200"));
    cr_assert(!in_list("192.168.1.128/25", "192.168.1.127"));
    cr_assert(in_list("2001:db8:abcd:12::/63", "2001:db8:abcd:13::9"));
    cr_assert(!in_list("2001:db8:abcd:12::/63", "2001:db8:abcd:14::"));
    /* IPv4-mapped: as the IPv4 address, in a list and being matched */
    cr_assert(in_list("10.0.0.0/8", "::ffff:10.1.2.3"));
    cr_assert(in_list("::ffff:10.0.0.0/104", "10.1.2.3"));
    cr_assert(!in_list("::ffff:10.0.0.0/104", "11.1.2.3"));
    cr_assert(in_list("::ffff:0.0.0.0/96", "1.2.3.4"));
    cr_assert(!in_list("::/0", "::ffff:1.2.3.4"));
    /* several blocks, commas and blanks */
    cr_assert(in_list(" 127.0.0.1/32,10.0.0.0/8 \t::1/128 ,", "::1"));
    cr_assert(in_list("127.0.0.1/32,10.0.0.0/8  ::1/128", "10.9.9.9"));
    cr_assert(!in_list("", "127.0.0.1"));
    /* another family never matches */
    struct cidr_list l = list("0.0.0.0/0, ::/0");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    cr_assert(!cidr_list_match(&l, (const struct sockaddr *)&un));
}

static void cidr_bad(const char *s, const char *reason)
{
    struct cidr_list l;
    l.n = 5;
    char err[200] = "";
    cr_assert_eq(cidr_list_parse(s, &l, err, sizeof err), -1, "%s accepted", s);
    cr_assert_eq(l.n, 0);
    cr_assert(strstr(err, reason), "%s: %s", s, err);
    cr_assert_eq(cidr_list_check(s, err, sizeof err), -1);
}

Test(proxy, cidr_refusals)
{
    cidr_bad("10.0.0.0/33", "prefix length must be 0-32");
    cidr_bad("::/129", "prefix length must be 0-128");
    cidr_bad("10.0.0.0/", "prefix length");
    cidr_bad("10.0.0.0/08", "prefix length");
    cidr_bad("10.0.0.0/-1", "prefix length");
    cidr_bad("10.0.0.0/8/8", "prefix length");
    cidr_bad("10.0.0.1/8", "bits set after its /8 prefix");
    cidr_bad("2001:db8::1/64", "bits set");
    cidr_bad("localhost", "not a numeric");
    cidr_bad("10.0.0/8", "not a numeric");
    cidr_bad("/8", "not an address block");
    char many[2048] = "";
    for (int i = 0; i <= CIDR_LIST_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "10.%d.0.0/16 ", i);
    cidr_bad(many, "more than 64");
    cr_assert_eq(cidr_list_check("10.0.0.0/8, ::1", NULL, 0), 0);
}

/* The client of a request from SRC with X-Forwarded-For values V (N), under TRUSTED. */
static const char *xff(const char *trusted, const char *src, const char *const *v, int n, char *buf,
                       size_t len)
{
    struct cidr_list l = list(trusted);
    struct proxy_span spans[8];
    for (int i = 0; i < n; i++) spans[i] = (struct proxy_span){v[i], strlen(v[i])};
    struct sockaddr_in6 s = addr(src), out;
    int moved = proxy_xff_client(&l, (const struct sockaddr *)&s, spans, n, &out);
    text(&out, buf, len);
    if (strcmp(buf, src) != 0) cr_assert_eq(moved, 1, "%s from %s: returned 0", buf, src);
    return buf;
}

#define XFF(trusted, src, ...)                                                                     \
    xff(trusted, src, (const char *const[]){__VA_ARGS__},                                          \
        (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)), t, sizeof t)

Test(proxy, xff_walks_from_the_right)
{
    char t[INET6_ADDRSTRLEN];
    const char *lb = "127.0.0.1/32, 10.0.0.0/8";
    /* one hop */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7"), "203.0.113.7");
    /* the client forged a left part: the rightmost untrusted hop wins */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "1.1.1.1, 203.0.113.7"), "203.0.113.7");
    /* through two trusted proxies */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "1.1.1.1, 203.0.113.7, 10.0.0.5"), "203.0.113.7");
    /* several headers are one list, in order */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "1.1.1.1", "203.0.113.7", "10.0.0.5"), "203.0.113.7");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "1.1.1.1, 203.0.113.7", "10.0.0.5,10.0.0.6"),
                     "203.0.113.7");
    /* every hop trusted: the leftmost */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "10.0.0.9, 10.0.0.5"), "10.0.0.9");
    /* an untrusted peer: the header changes nothing */
    cr_assert_str_eq(XFF(lb, "192.0.2.1", "203.0.113.7"), "192.0.2.1");
    cr_assert_str_eq(XFF("", "127.0.0.1", "203.0.113.7"), "127.0.0.1");
    /* no header, or only empty elements: the peer */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", ""), "127.0.0.1");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", " , ,"), "127.0.0.1");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7 , "), "203.0.113.7");
    /* ports and brackets */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7:5555"), "203.0.113.7");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "[2001:db8::7]:5555"), "2001:db8::7");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "[2001:db8::7]"), "2001:db8::7");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "2001:db8::7"), "2001:db8::7");
    cr_assert_str_eq(XFF("::1", "::1", "\t2001:db8::7\t"), "2001:db8::7");
    /* a mapped peer is its IPv4 address */
    cr_assert_str_eq(XFF(lb, "::ffff:127.0.0.1", "203.0.113.7"), "203.0.113.7");
}

Test(proxy, xff_malformed_stops_at_the_last_trusted_hop)
{
    char t[INET6_ADDRSTRLEN];
    const char *lb = "127.0.0.1/32, 10.0.0.0/8";
    /* the rightmost element is bad: the peer */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7, unknown"), "127.0.0.1");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7, 1.2.3.4:99999"), "127.0.0.1");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7, [2001:db8::1"), "127.0.0.1");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7, 1.2.3"), "127.0.0.1");
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7, _hidden"), "127.0.0.1");
    /* a bad element after a trusted hop: that hop */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "garbage, 10.0.0.5"), "10.0.0.5");
    /* a bad element left of the client is never reached */
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "garbage, 203.0.113.7"), "203.0.113.7");
    /* a very long element */
    char big[300];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_str_eq(XFF(lb, "127.0.0.1", "203.0.113.7", big), "127.0.0.1");
}

Test(proxy, xfp_https)
{
    struct proxy_span v[2] = {{"https", 5}, {"http", 4}};
    cr_assert_eq(proxy_xfp_https(v, 1), 1);
    cr_assert_eq(proxy_xfp_https(v + 1, 1), 0);
    cr_assert_eq(proxy_xfp_https(v, 2), 1);
    struct proxy_span w[1] = {{" HTTPS , http", 13}};
    cr_assert_eq(proxy_xfp_https(w, 1), 1);
    struct proxy_span x[1] = {{"httpsx", 6}};
    cr_assert_eq(proxy_xfp_https(x, 1), 0);
    cr_assert_eq(proxy_xfp_https(v, 0), 0);
}

static const struct request_limits limits = {4096, 16384, 64};

/* A request whose head is HEAD, parsed; the caller releases it. */
static void parse_head(struct request *r, const char *head)
{
    memset(r, 0, sizeof *r);
    request_init(r, &limits);
    size_t used;
    cr_assert_eq(request_feed(r, head, strlen(head), &used), REQUEST_HEAD);
}

Test(proxy, request_client_reads_every_header_from_a_trusted_peer_only)
{
    struct request r;
    parse_head(&r, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
                   "X-Forwarded-Proto: https\r\nx-forwarded-for: 203.0.113.7\r\n"
                   "X-Forwarded-For: 10.0.0.5\r\n\r\n");
    struct cidr_list l = list("127.0.0.1/32, 10.0.0.0/8");
    struct sockaddr_in6 peer = addr("127.0.0.1"), out;
    char t[INET6_ADDRSTRLEN];
    int https = -1;
    cr_assert_eq(proxy_request_client(&l, (struct sockaddr *)&peer, &r, &out, &https), 1);
    cr_assert_str_eq(text(&out, t, sizeof t), "203.0.113.7");
    cr_assert_eq(https, 1);
    /* from an untrusted peer: nothing is believed */
    peer = addr("192.0.2.1");
    cr_assert_eq(proxy_request_client(&l, (struct sockaddr *)&peer, &r, &out, &https), 0);
    cr_assert_str_eq(text(&out, t, sizeof t), "192.0.2.1");
    cr_assert_eq(https, 0);
    request_release(&r);
}

Test(proxy, request_client_reads_the_last_sixteen_headers)
{
    char head[4096] = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.1\r\n";
    for (int i = 0; i < 20; i++) strcat(head, "X-Forwarded-For: 10.0.0.5\r\n");
    strcat(head, "\r\n");
    struct request r;
    parse_head(&r, head);
    struct cidr_list l = list("127.0.0.1/32, 10.0.0.0/8");
    struct sockaddr_in6 peer = addr("127.0.0.1"), out;
    char t[INET6_ADDRSTRLEN];
    int https;
    proxy_request_client(&l, (struct sockaddr *)&peer, &r, &out, &https);
    /* the walk ends inside what it read: the leftmost hop it saw, a trusted one */
    cr_assert_str_eq(text(&out, t, sizeof t), "10.0.0.5");
    request_release(&r);
}
