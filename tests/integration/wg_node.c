/* The driver of tests/integration/test_wg.sh: one "device" of the simulated network runs the
 * agent's WireGuard module with a netstate built from its command line (no hub, no JSON):
 *   wg_node pubkey IDENTITY_DIR
 *   wg_node apply IFNAME IDENTITY_DIR RUN_DIR POD_CIDR CLUSTER_CIDR PORT MTU KEEPALIVE NAT
 *           [NAME,PUBKEY,POD_CIDR,ENDPOINT,VIA ...]      (NAT: 0 or 1; ENDPOINT/VIA may be "")
 *   wg_node handshakes IFNAME       (one line per peer: key age-seconds rx tx endpoint)
 *   wg_node remove IFNAME
 * Exit 0 on success; errors on stderr. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/fmt.h"
#include "net/wg.h"

static int fail(const char *what, const drv_error_t *err)
{
    fprintf(stderr, "wg_node: %s: %s\n", what, drv_error_msg(err));
    return 1;
}

static bool cidr_parse(const char *s, drv_net_cidr_t *c)
{
    char ip[INET_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof(ip))
        return false;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    struct in_addr a;
    char *end = NULL;
    long p = strtol(slash + 1, &end, 10);
    if (inet_pton(AF_INET, ip, &a) != 1 || *end != '\0' || p < 0 || p > 32)
        return false;
    c->addr = ntohl(a.s_addr);
    c->prefix = (uint8_t)p;
    return true;
}

static long num(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return *end == '\0' ? v : -1;
}

/* "name,key,cidr,endpoint,via" into p. */
static bool peer_parse(const char *arg, drv_net_peer_t *p)
{
    char buf[1024];
    if (drv_fmt(buf, sizeof(buf), "%s", arg) != DRV_OK)
        return false;
    char *f[5];
    char *s = buf;
    for (int i = 0; i < 5; i++) {
        f[i] = s;
        char *comma = strchr(s, ',');
        if (i < 4 && comma == NULL)
            return false;
        if (comma != NULL)
            *comma = '\0';
        s = comma ? comma + 1 : s;
    }
    return drv_fmt(p->node, sizeof(p->node), "%s", f[0]) == DRV_OK &&
           drv_fmt(p->public_key, sizeof(p->public_key), "%s", f[1]) == DRV_OK &&
           cidr_parse(f[2], &p->pod_cidr) &&
           drv_fmt(p->endpoint, sizeof(p->endpoint), "%s", f[3]) == DRV_OK &&
           drv_fmt(p->via, sizeof(p->via), "%s", f[4]) == DRV_OK;
}

int main(int argc, char **argv)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (argc == 3 && !strcmp(argv[1], "pubkey")) {
        char pub[DRV_NET_KEY_LEN + 1];
        if (drv_wg_key_load_or_create(argv[2], pub, &err) != DRV_OK)
            return fail("pubkey", &err);
        printf("%s\n", pub);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "remove")) {
        drv_wg_opts_t o = {.ifname = argv[2]};
        return drv_wg_remove(&o, &err) == DRV_OK ? 0 : fail("remove", &err);
    }
    if (argc == 3 && !strcmp(argv[1], "handshakes")) {
        drv_wg_opts_t o = {.ifname = argv[2]};
        drv_wg_peer_stat_t *p = NULL;
        size_t n = 0;
        if (drv_wg_handshakes(&o, &p, &n, &err) != DRV_OK)
            return fail("handshakes", &err);
        for (size_t i = 0; i < n; i++)
            printf("%s %lld %llu %llu %s\n", p[i].public_key,
                   drv_wg_handshake_age(&p[i], (long long)time(NULL)),
                   (unsigned long long)p[i].rx_bytes, (unsigned long long)p[i].tx_bytes,
                   p[i].endpoint[0] ? p[i].endpoint : "-");
        free(p);
        return 0;
    }
    if (argc < 11 || strcmp(argv[1], "apply") != 0) {
        fprintf(stderr, "usage: see the comment at the top of wg_node.c\n");
        return 2;
    }
    drv_netstate_t ns = {0};
    ns.present = true;
    size_t npeers = (size_t)(argc - 11);
    drv_net_peer_t *peers = calloc(npeers ? npeers : 1, sizeof(*peers));
    if (peers == NULL)
        return 1;
    long port = num(argv[7]), mtu = num(argv[8]), ka = num(argv[9]);
    if (!cidr_parse(argv[5], &ns.pod_cidr) || !cidr_parse(argv[6], &ns.cluster_cidr) || port <= 0 ||
        port > 65535 || mtu <= 0 || mtu > 65535 || ka < 0 || ka > 65535) {
        fprintf(stderr, "wg_node: bad arguments\n");
        return 2;
    }
    ns.listen_port = (uint16_t)port;
    ns.mtu = (uint16_t)mtu;
    ns.keepalive_s = (uint16_t)ka;
    for (size_t i = 0; i < npeers; i++)
        if (!peer_parse(argv[11 + i], &peers[i])) {
            fprintf(stderr, "wg_node: bad peer \"%s\"\n", argv[11 + i]);
            return 2;
        }
    for (size_t i = 0; i < npeers; i++)
        for (size_t j = 0; j < npeers; j++)
            if (!strcmp(peers[j].node, peers[i].via))
                peers[j].relay = true;
    ns.peers = peers;
    ns.npeers = npeers;
    drv_wg_opts_t o = {.ifname = argv[2],
                       .identity_dir = argv[3],
                       .run_dir = argv[4],
                       .behind_nat = !strcmp(argv[10], "1")};
    drv_wg_state_t st;
    drv_err_t rc = drv_wg_apply(&o, &ns, &st, &err);
    free(peers);
    if (rc != DRV_OK)
        return fail("apply", &err);
    printf("%s %s peers=%zu routes=%zu%s\n", drv_wg_impl_name(st.impl), st.public_key, st.npeers,
           st.nroutes, st.created ? " created" : "");
    return 0;
}
