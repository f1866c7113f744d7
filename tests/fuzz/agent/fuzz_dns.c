/* The DNS server's answer to any packet: the parser (names, compression pointers, records,
 * OPT) and the encoder behind it, over a small zone, for UDP and TCP limits. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/dns.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))

static drv_dns_t *zone_server(void)
{
    static drv_net_port_t ports[] = {{"http", 6, 80, 0}};
    static uint16_t tp[] = {8080};
    static drv_net_endpoint_t eps[] = {{IP(10, 42, 1, 5), "n1", "p", "h", true, true, false, tp},
                                       {IP(10, 42, 1, 6), "n1", "q", "", true, true, false, tp}};
    static drv_net_service_t svcs[2];
    static drv_netstate_t ns;
    memcpy(svcs[0].ns, "default", 8);
    memcpy(svcs[0].name, "web", 4);
    svcs[0].cluster_ip = IP(10, 43, 0, 12);
    svcs[0].ports = ports;
    svcs[0].nports = 1;
    svcs[1] = svcs[0];
    memcpy(svcs[1].name, "db", 3);
    svcs[1].headless = true;
    svcs[1].cluster_ip = 0;
    svcs[1].endpoints = eps;
    svcs[1].nendpoints = 2;
    ns.present = true;
    ns.cluster_cidr = (drv_net_cidr_t){IP(10, 42, 0, 0), 16};
    ns.service_cidr = (drv_net_cidr_t){IP(10, 43, 0, 0), 16};
    memcpy(ns.cluster_domain, "cluster.local", 14);
    ns.services = svcs;
    ns.nservices = 2;
    drv_dns_opts_t o = {.resolv_conf = ""};
    drv_dns_t *s = NULL;
    if (drv_dns_open(NULL, 0, &o, &s, NULL) != DRV_OK || drv_dns_update(s, &ns, NULL) != DRV_OK)
        __builtin_trap();
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static drv_dns_t *s;
    static uint8_t out[65536];
    if (!s)
        s = zone_server();
    drv_dns_msg_t m;
    drv_dns_rr_t rrs[32];
    if (drv_dns_parse(data, size, rrs, 32, &m, NULL) == DRV_OK) {
        char t[DRV_DNS_NAME_TEXT];
        for (size_t i = 0; i < m.nrrs; i++)
            if (drv_dns_read_name(data, size, rrs[i].name_off, t, sizeof(t), NULL, NULL) != DRV_OK)
                __builtin_trap(); /* a name the parser accepted reads again */
    }
    for (int tcp = 0; tcp < 2; tcp++) {
        size_t n = 0;
        bool fwd = false;
        if (drv_dns_answer(s, data, size, tcp, out, sizeof(out), &n, &fwd, NULL) != DRV_OK || fwd)
            continue;
        /* Whatever the server sends parses, and fits the client's limit. */
        if (drv_dns_parse(out, n, NULL, 0, &m, NULL) != DRV_OK || (!tcp && n > DRV_DNS_UDP_SIZE))
            __builtin_trap();
    }
    return 0;
}
