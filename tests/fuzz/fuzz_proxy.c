/* fuzz_proxy.c: libFuzzer target for the client address behind a load balancer
 * (gateway/proxy.c, common/cidr.c). The first input byte picks a mode, the rest is its input.
 * Checked with abort():
 *   mode 0, PROXY header: proxy_parse() of the rest. A whole header (OK) is at most
 *     PROXY_HEADER_MAX bytes (a v1 one at most 107), fits in the input, parses the same from
 *     exactly its own bytes, and every shorter prefix of it asks for more. MORE is only answered
 *     below PROXY_HEADER_MAX bytes. INVALID comes with a reason and stays INVALID whatever
 *     follows (checked by parsing the input with one more byte).
 *   mode 1, X-Forwarded-For: the rest is "LIST\nVALUE\nVALUE...". When LIST parses as a block
 *     list (never more than CIDR_LIST_MAX blocks), each block contains its own address; from an
 *     untrusted peer the values change nothing; from a trusted peer the result is the peer
 *     (returned 0) or an address taken from the values. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "antre/cidr.h"
#include "proxy.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void header_mode(const uint8_t *p, size_t n)
{
    struct proxy_header h;
    const char *why = NULL;
    enum proxy_result r = proxy_parse(p, n, &h, &why);
    CHECK(r == PROXY_OK || r == PROXY_MORE || r == PROXY_INVALID);
    if (r == PROXY_MORE) {
        CHECK(n < PROXY_HEADER_MAX);
        return;
    }
    uint8_t *more = malloc(n + 1);
    if (!more) abort();
    memcpy(more, p, n);
    more[n] = 'x';
    if (r == PROXY_INVALID) {
        CHECK(why && why[0]);
        struct proxy_header h2;
        CHECK(proxy_parse(more, n + 1, &h2, &why) == PROXY_INVALID);
        free(more);
        return;
    }
    free(more);
    CHECK(h.len > 0 && h.len <= n && h.len <= PROXY_HEADER_MAX);
    if (p[0] == 'P') CHECK(h.len <= PROXY_V1_MAX);
    CHECK(h.has_addr == 0 || h.has_addr == 1);
    if (h.has_addr) CHECK(h.src.sin6_family == AF_INET || h.src.sin6_family == AF_INET6);
    struct proxy_header again;
    CHECK(proxy_parse(p, h.len, &again, &why) == PROXY_OK);
    CHECK(again.len == h.len && again.has_addr == h.has_addr);
    if (h.has_addr) CHECK(!memcmp(&again.src, &h.src, sizeof h.src));
    CHECK(proxy_parse(p, h.len - 1, &again, &why) == PROXY_MORE);
    CHECK(proxy_parse(p, h.len / 2, &again, &why) == PROXY_MORE);
}

static void xff_mode(const uint8_t *p, size_t n)
{
    const char *s = (const char *)p, *end = s + n;
    const char *nl = memchr(s, '\n', n);
    size_t ll = nl ? (size_t)(nl - s) : n;
    char *text = malloc(ll + 1);
    if (!text) abort();
    memcpy(text, s, ll);
    text[ll] = 0;
    static struct cidr_list l;
    int rc = cidr_list_parse(text, &l, NULL, 0);
    free(text);
    if (rc < 0) {
        CHECK(l.n == 0);
        return;
    }
    CHECK(l.n >= 0 && l.n <= CIDR_LIST_MAX);
    for (int i = 0; i < l.n; i++) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        if (l.e[i].family == AF_INET) {
            struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
            a4->sin_family = AF_INET;
            memcpy(&a4->sin_addr, l.e[i].addr, 4);
        } else {
            CHECK(l.e[i].family == AF_INET6);
            a.sin6_family = AF_INET6;
            memcpy(&a.sin6_addr, l.e[i].addr, 16);
        }
        CHECK(cidr_list_match(&l, (const struct sockaddr *)&a));
    }
    struct proxy_span vals[16];
    int nv = 0;
    for (const char *v = nl ? nl + 1 : end; v <= end && nv < 16 && nl;) {
        const char *e = memchr(v, '\n', (size_t)(end - v));
        if (!e) e = end;
        vals[nv++] = (struct proxy_span){v, (size_t)(e - v)};
        v = e + 1;
    }
    /* a peer in the list (when it has an IPv4 or IPv6 block), and one surely not in it */
    struct sockaddr_in peer = {.sin_family = AF_INET};
    memcpy(&peer.sin_addr, l.n && l.e[0].family == AF_INET ? l.e[0].addr : (uint8_t[]){1, 2, 3, 4},
           4);
    struct sockaddr_in6 out;
    int trusted = cidr_list_match(&l, (const struct sockaddr *)&peer);
    int moved = proxy_xff_client(&l, (const struct sockaddr *)&peer, vals, nv, &out);
    CHECK(moved == 0 || moved == 1);
    if (!trusted) CHECK(moved == 0);
    if (!moved) CHECK(!memcmp(&out, &peer, sizeof peer));
    else CHECK(out.sin6_family == AF_INET || out.sin6_family == AF_INET6);
    (void)proxy_xfp_https(vals, nv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    if (data[0] % 2 == 0) header_mode(data + 1, size - 1);
    else xff_mode(data + 1, size - 1);
    return 0;
}
