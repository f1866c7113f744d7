/* IPv4 addresses and prefixes: parsing exactly (no leading zeros, which some tools read as
 * octal, no spaces or signs), formatting without snprintf, and the prefix arithmetic. */
#include <string.h>

#include "drover/ipv4.h"

uint32_t drv_net_prefix_mask(unsigned prefix)
{
    if (prefix >= 32)
        return 0xffffffffu;
    return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

bool drv_net_ip_parse(const char *s, uint32_t *ip)
{
    if (s == NULL)
        return false;
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && *s++ != '.')
            return false;
        if (*s < '0' || *s > '9')
            return false;
        if (*s == '0' && s[1] >= '0' && s[1] <= '9')
            return false; /* a leading zero reads as octal to some tools: refused */
        unsigned octet = 0;
        int digits = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (++digits > 3)
                return false;
            octet = octet * 10 + (unsigned)(*s - '0');
        }
        if (octet > 255)
            return false;
        v = v << 8 | octet;
    }
    if (*s != '\0')
        return false;
    *ip = v;
    return true;
}

static char *put_uint(char *p, unsigned v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

void drv_net_ip_format(uint32_t ip, char out[DRV_NET_IP_STR])
{
    char *p = out;
    for (int i = 3; i >= 0; i--) {
        p = put_uint(p, (ip >> (8 * i)) & 0xff);
        if (i > 0)
            *p++ = '.';
    }
    *p = '\0';
}

void drv_net_cidr_format(drv_net_cidr_t c, char out[DRV_NET_CIDR_STR])
{
    drv_net_ip_format(c.addr, out);
    char *p = out + strlen(out);
    *p++ = '/';
    p = put_uint(p, c.prefix);
    *p = '\0';
}

drv_err_t drv_net_cidr_parse(const char *s, bool allow_host_bits, drv_net_cidr_t *out,
                             drv_error_t *err)
{
    if (s == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no CIDR");
    const char *slash = strchr(s, '/');
    char ipbuf[DRV_NET_IP_STR];
    size_t iplen = slash ? (size_t)(slash - s) : 0;
    uint32_t ip = 0;
    if (slash == NULL || iplen >= sizeof ipbuf)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "\"%.40s\": must be an IPv4 CIDR (a.b.c.d/n)",
                             s);
    memcpy(ipbuf, s, iplen);
    ipbuf[iplen] = '\0';
    if (!drv_net_ip_parse(ipbuf, &ip))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "\"%.40s\": must be an IPv4 CIDR (a.b.c.d/n)",
                             s);
    const char *p = slash + 1;
    unsigned prefix = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
        prefix = prefix * 10 + (unsigned)(*p - '0');
    if (digits == 0 || *p != '\0' || (digits > 1 && slash[1] == '0') || prefix > 32)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "\"%.40s\": the prefix length must be a number from 0 to 32", s);
    drv_net_cidr_t c = {ip & drv_net_prefix_mask(prefix), (uint8_t)prefix};
    if (!allow_host_bits && c.addr != ip) {
        char net[DRV_NET_CIDR_STR];
        drv_net_cidr_format(c, net);
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "\"%.40s\": host bits are set (the network is %s)", s, net);
    }
    *out = c;
    return DRV_OK;
}

bool drv_net_cidr_contains(drv_net_cidr_t c, uint32_t ip)
{
    return (ip & drv_net_prefix_mask(c.prefix)) == (c.addr & drv_net_prefix_mask(c.prefix));
}

bool drv_net_cidr_overlaps(drv_net_cidr_t a, drv_net_cidr_t b)
{
    uint32_t m = drv_net_prefix_mask(a.prefix < b.prefix ? a.prefix : b.prefix);
    return (a.addr & m) == (b.addr & m);
}

bool drv_net_cidr_covers(drv_net_cidr_t outer, drv_net_cidr_t inner)
{
    return inner.prefix >= outer.prefix && drv_net_cidr_contains(outer, inner.addr);
}

bool drv_net_cidr_nth(drv_net_cidr_t c, uint32_t n, uint32_t *ip)
{
    if (c.prefix > 32 || (c.prefix > 0 && (uint64_t)n >= (1ull << (32 - c.prefix))))
        return false;
    *ip = (c.addr & drv_net_prefix_mask(c.prefix)) + n;
    return true;
}
