/* cidr.h: lists of IPv4 and IPv6 address blocks ("127.0.0.1/32, 10.0.0.0/8, ::1/128") and
 * the test of an address against them: the gateway's trusted_proxies.
 *
 * A list is written as blocks separated by commas and/or blanks; a block is ADDRESS/BITS or a
 * bare ADDRESS (one host: /32 or /128). Bits set after the prefix are refused (10.0.0.1/8 is
 * more often a typo than a wish). An IPv4-mapped IPv6 address (::ffff:a.b.c.d), in a list or
 * being matched, is that IPv4 address, as in the per-IP rate limit; otherwise IPv4 addresses
 * match only IPv4 blocks and IPv6 addresses only IPv6 blocks (everything: 0.0.0.0/0, ::/0).
 *
 * Lives in common/ because the configuration loader validates the directive with it. */
#ifndef ANTRE_CIDR_H
#define ANTRE_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Most blocks in one list. */
#define CIDR_LIST_MAX 64

struct cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;   /* prefix length: 0-32 or 0-128 */
    uint8_t addr[16];
};

struct cidr_list {
    int n;
    struct cidr e[CIDR_LIST_MAX];
};

/* Parse TEXT (NUL-terminated; empty or blank = the empty list) into *OUT. Returns 0, or -1 with
 * the first bad block and why in ERR (ERR may be NULL); *OUT is then the empty list. */
int cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errlen);

/* The configuration validator: 0 when TEXT parses, else -1 with the reason in ERR. */
int cidr_list_check(const char *text, char *err, size_t errlen);

/* 1 when the address SA (AF_INET or AF_INET6; borrowed) lies in a block of L, else 0 (other
 * families never match). */
int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

#endif
