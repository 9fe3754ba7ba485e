/* cidr.c: address block lists (see cidr.h). */
#include "antre/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "antre/errbuf.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parse one block TOK (NUL-terminated) into *C. */
static int parse_block(const char *tok, struct cidr *c, char *err, size_t errlen)
{
    char host[64];
    const char *slash = strchr(tok, '/');
    size_t hl = slash ? (size_t)(slash - tok) : strlen(tok);
    if (hl == 0 || hl >= sizeof host) {
        errbuf_set(err, errlen, "'%s' is not an address block (ADDRESS/BITS)", tok);
        return -1;
    }
    memcpy(host, tok, hl);
    host[hl] = 0;
    memset(c, 0, sizeof *c);
    int max;
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        errbuf_set(err, errlen, "'%s' is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    int bits = max;
    if (slash) {
        const char *b = slash + 1;
        size_t nb = strlen(b);
        if (nb == 0 || nb > 3 || strspn(b, "0123456789") != nb || (nb > 1 && b[0] == '0') ||
            (bits = atoi(b)) > max) {
            errbuf_set(err, errlen, "'%s': the prefix length must be 0-%d", tok, max);
            return -1;
        }
    }
    c->bits = (uint8_t)bits;
    for (int i = bits; i < max; i++)
        if (c->addr[i / 8] & (0x80 >> (i % 8))) {
            errbuf_set(err, errlen, "'%s' has bits set after its /%d prefix", tok, bits);
            return -1;
        }
    if (c->family == AF_INET6 && bits >= 96 && !memcmp(c->addr, v4_mapped, 12)) {
        /* ::ffff:a.b.c.d/N is the IPv4 block a.b.c.d/(N-96). */
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        c->bits = (uint8_t)(bits - 96);
    }
    return 0;
}

int cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errlen)
{
    out->n = 0;
    const char *p = text;
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p) return 0;
        size_t len = strcspn(p, ", \t");
        char tok[80];
        if (len >= sizeof tok) {
            errbuf_set(err, errlen, "'%.40s...' is too long for an address block", p);
            out->n = 0;
            return -1;
        }
        memcpy(tok, p, len);
        tok[len] = 0;
        if (out->n == CIDR_LIST_MAX) {
            errbuf_set(err, errlen, "more than %d address blocks", CIDR_LIST_MAX);
            out->n = 0;
            return -1;
        }
        if (parse_block(tok, &out->e[out->n], err, errlen) < 0) {
            out->n = 0;
            return -1;
        }
        out->n++;
        p += len;
    }
}

int cidr_list_check(const char *text, char *err, size_t errlen)
{
    struct cidr_list *l = malloc(sizeof *l);
    if (!l) abort();
    int rc = cidr_list_parse(text, l, err, errlen);
    free(l);
    return rc;
}

/* 1 when the first BITS bits of A and B are equal. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0) return 0;
    if (!rest) return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
    const uint8_t *addr;
    int family;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        family = AF_INET6;
        if (!memcmp(addr, v4_mapped, 12)) {
            family = AF_INET;
            addr += 12;
        }
    } else {
        return 0;
    }
    for (int i = 0; i < l->n; i++)
        if (l->e[i].family == family && prefix_equal(l->e[i].addr, addr, l->e[i].bits)) return 1;
    return 0;
}
