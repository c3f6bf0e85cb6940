/* webhook_addr.c — which addresses a webhook delivery may connect to
 * without --webhook-allow-private.
 *
 * A webhook URL is chosen by an organization admin and keyward connects
 * from inside the operator's network, so the sender asks this, for every
 * address a connection is about to go to (after DNS), whether it is a
 * globally reachable unicast address.  It lives in the library, apart from
 * the sender, so a table of addresses can test it without DNS or sockets.
 *
 * IPv4: the non-global blocks of IANA's special-purpose registry are
 * refused.  IPv6: only global unicast (2000::/3) is taken, less its
 * non-global blocks — an allowlist, so a block IANA names later, or one we
 * forgot, is refused rather than reached.  Forms that carry an IPv4
 * address (mapped, compatible, SIIT-translated, NAT64's well-known prefix,
 * 6to4) are judged by that IPv4 address: a 6to4 or NAT64 address of a
 * public host is a legitimate receiver, one of 169.254.169.254 is not. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "keyward/webhook.h"

static int public_v4(const unsigned char *a)
{
    if (a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224) return 0; /* 0/8, 10/8, loopback,
                                                                             multicast, 240/4 */
    if (a[0] == 100 && (a[1] & 0xc0) == 64) return 0;      /* 100.64/10 shared (CGNAT) */
    if (a[0] == 169 && a[1] == 254) return 0;              /* link-local, cloud metadata */
    if (a[0] == 172 && (a[1] & 0xf0) == 16) return 0;      /* 172.16/12 */
    if (a[0] == 192 && a[1] == 168) return 0;              /* 192.168/16 */
    if (a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2))
        return 0;                                          /* IETF assignments, TEST-NET-1 */
    if (a[0] == 192 && a[1] == 88 && a[2] == 99) return 0; /* 6to4 relay anycast (deprecated) */
    if (a[0] == 198 && (a[1] & 0xfe) == 18) return 0;      /* 198.18/15 benchmarking */
    if (a[0] == 198 && a[1] == 51 && a[2] == 100) return 0; /* TEST-NET-2 */
    if (a[0] == 203 && a[1] == 0 && a[2] == 113) return 0;  /* TEST-NET-3 */
    return 1;
}

static int public_v6(const unsigned char *a)
{
    static const unsigned char MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char TRANSLATED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const unsigned char COMPATIBLE[12] = {0};
    static const unsigned char NAT64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    /* ::ffff:a.b.c.d, ::ffff:0:a.b.c.d, ::a.b.c.d (with :: and ::1, whose
     * 0.0.0.0/8 is refused) and 64:ff9b::a.b.c.d. */
    if (memcmp(a, MAPPED, 12) == 0 || memcmp(a, TRANSLATED, 12) == 0 ||
        memcmp(a, COMPATIBLE, 12) == 0 || memcmp(a, NAT64, 12) == 0)
        return public_v4(a + 12);
    /* Outside 2000::/3: unique local, link- and site-local, multicast,
     * discard-only, the local-use NAT64 prefix 64:ff9b:1::/48 (its
     * translator reaches the operator's own IPv4 network) and the rest. */
    if ((a[0] & 0xe0) != 0x20) return 0;
    if (a[0] == 0x20 && a[1] == 0x02) return public_v4(a + 2); /* 6to4 2002:a.b.c.d::/48 */
    /* 2001::/23, IETF protocol assignments: Teredo (its client address is
     * obscured), benchmarking, ORCHID, anycast services; no receiver. */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] <= 0x01) return 0;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return 0; /* 2001:db8::/32 */
    if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0) return 0;          /* 3fff::/20 doc. */
    return 1;
}

int kw_webhook_address_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        unsigned char v4[4];
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return public_v4(v4);
    }
    if (sa->sa_family != AF_INET6) return 0;
    unsigned char v6[16];
    memcpy(v6, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
    return public_v6(v6);
}
