/* IPv4 addresses and prefixes as text and as numbers: the one parser and formatter that the
 * hub's address allocator, the model's validation and the agent's network modules share, so a
 * CIDR one of them accepts is a CIDR every other one reads the same way. */
#ifndef DROVER_IPV4_H
#define DROVER_IPV4_H

#include <stdbool.h>
#include <stdint.h>
#include "drover/error.h"

#define DRV_NET_IP_STR 16   /* "255.255.255.255" and its NUL */
#define DRV_NET_CIDR_STR 19 /* "255.255.255.255/32" and its NUL */

/* An IPv4 prefix, host byte order, the address masked to its prefix. */
typedef struct drv_net_cidr {
    uint32_t addr;
    uint8_t prefix;
} drv_net_cidr_t;

/* "a.b.c.d/n" exactly (no leading zeros, host bits zero unless allow_host_bits, in which case
 * they are masked off). The message quotes s: the caller prefixes the field's name. */
DRV_API DRV_NODISCARD drv_err_t drv_net_cidr_parse(const char *s, bool allow_host_bits,
                                                   drv_net_cidr_t *out, drv_error_t *err);
DRV_API void drv_net_cidr_format(drv_net_cidr_t c, char out[DRV_NET_CIDR_STR]);
DRV_API void drv_net_ip_format(uint32_t ip, char out[DRV_NET_IP_STR]);
/* "a.b.c.d" exactly (no leading zeros); false for NULL. */
DRV_API bool drv_net_ip_parse(const char *s, uint32_t *ip);
/* The netmask of a prefix length (0 for /0; lengths over 32 count as 32). */
DRV_API uint32_t drv_net_prefix_mask(unsigned prefix);
DRV_API bool drv_net_cidr_contains(drv_net_cidr_t c, uint32_t ip);
DRV_API bool drv_net_cidr_overlaps(drv_net_cidr_t a, drv_net_cidr_t b);
/* Every address of inner is in outer (inner may equal outer). */
DRV_API bool drv_net_cidr_covers(drv_net_cidr_t outer, drv_net_cidr_t inner);
/* The n-th address of c (0 = the network address); false when outside c. */
DRV_API bool drv_net_cidr_nth(drv_net_cidr_t c, uint32_t n, uint32_t *ip);

#endif
