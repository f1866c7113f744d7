/* The node's DNS server alone, for tests/integration/test_dns.sh: serves the records of a
 * JSON file shaped like the desired state's "network" section (the fields DNS reads) on
 * ADDR:PORT, forwarding other names to the resolvers of a resolv.conf, until SIGTERM.
 * Usage: dns_serve ADDR PORT NETWORK.json RESOLV.conf   (prints "ready" once listening) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/json.h"
#include "drover/proc.h"
#include "net/dns.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static uint32_t ip_of(const char *s)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1) {
        fprintf(stderr, "dns_serve: bad address %s\n", s ? s : "(none)");
        exit(2);
    }
    return ntohl(a.s_addr);
}

static drv_net_cidr_t cidr_of(const char *s)
{
    char buf[32];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || (size_t)(slash - s) >= sizeof(buf)) {
        fprintf(stderr, "dns_serve: bad CIDR %s\n", s ? s : "(none)");
        exit(2);
    }
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    return (drv_net_cidr_t){ip_of(buf), (uint8_t)strtol(slash + 1, NULL, 10)};
}

static void copy(char *dst, size_t n, const char *src)
{
    if (!src)
        src = "";
    if (strlen(src) >= n) {
        fprintf(stderr, "dns_serve: %s too long\n", src);
        exit(2);
    }
    memcpy(dst, src, strlen(src) + 1);
}

static void build(const cJSON *j, drv_netstate_t *ns)
{
    ns->present = true;
    copy(ns->cluster_domain, sizeof(ns->cluster_domain), drv_json_str(j, "clusterDomain"));
    ns->cluster_cidr = cidr_of(drv_json_str(j, "clusterCIDR"));
    ns->service_cidr = cidr_of(drv_json_str(j, "serviceCIDR"));
    const cJSON *svcs = drv_json_get(j, "services");
    ns->nservices = drv_json_array_len(svcs);
    ns->services = calloc(ns->nservices + 1, sizeof(*ns->services));
    size_t i = 0;
    for (const cJSON *s = svcs ? svcs->child : NULL; s; s = s->next, i++) {
        drv_net_service_t *sv = &ns->services[i];
        copy(sv->ns, sizeof(sv->ns), drv_json_str(s, "namespace"));
        copy(sv->name, sizeof(sv->name), drv_json_str(s, "name"));
        const char *cip = drv_json_str(s, "clusterIP");
        sv->headless = cip && strcmp(cip, "None") == 0;
        sv->cluster_ip = sv->headless ? 0 : ip_of(cip);
        sv->publish_not_ready = drv_json_true(s, "publishNotReadyAddresses");
        const cJSON *ps = drv_json_get(s, "ports");
        sv->nports = drv_json_array_len(ps);
        sv->ports = calloc(sv->nports + 1, sizeof(*sv->ports));
        size_t k = 0;
        for (const cJSON *p = ps ? ps->child : NULL; p; p = p->next, k++) {
            copy(sv->ports[k].name, sizeof(sv->ports[k].name), drv_json_str(p, "name"));
            const char *proto = drv_json_str_or(p, "protocol", "TCP");
            sv->ports[k].protocol = strcmp(proto, "UDP") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
            sv->ports[k].port = (uint16_t)drv_json_int_or(p, "port", 0);
        }
        const cJSON *es = drv_json_get(s, "endpoints");
        sv->nendpoints = drv_json_array_len(es);
        sv->endpoints = calloc(sv->nendpoints + 1, sizeof(*sv->endpoints));
        k = 0;
        for (const cJSON *e = es ? es->child : NULL; e; e = e->next, k++) {
            drv_net_endpoint_t *ep = &sv->endpoints[k];
            ep->ip = ip_of(drv_json_str(e, "ip"));
            copy(ep->hostname, sizeof(ep->hostname), drv_json_str(e, "hostname"));
            ep->ready = drv_json_true(e, "ready");
            ep->target_ports = calloc(sv->nports + 1, sizeof(uint16_t));
            const cJSON *tp = drv_json_get(e, "targetPorts");
            size_t t = 0;
            for (const cJSON *x = tp ? tp->child : NULL; x && t < sv->nports; x = x->next, t++)
                ep->target_ports[t] = (uint16_t)x->valuedouble;
        }
    }
    const cJSON *pods = drv_json_get(j, "pods");
    ns->npods = drv_json_array_len(pods);
    ns->pods = calloc(ns->npods + 1, sizeof(*ns->pods));
    i = 0;
    for (const cJSON *p = pods ? pods->child : NULL; p; p = p->next, i++) {
        ns->pods[i].ip = ip_of(drv_json_str(p, "ip"));
        copy(ns->pods[i].ns, sizeof(ns->pods[i].ns), drv_json_str(p, "namespace"));
        copy(ns->pods[i].name, sizeof(ns->pods[i].name), drv_json_str(p, "name"));
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: dns_serve ADDR PORT NETWORK.json RESOLV.conf\n");
        return 2;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(argv[3], 1 << 20, &text, &len, &err) != DRV_OK) {
        fprintf(stderr, "dns_serve: %s\n", drv_error_msg(&err));
        return 1;
    }
    _cleanup_cjson_ cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "dns_serve: %s: not JSON\n", argv[3]);
        return 1;
    }
    drv_netstate_t ns;
    memset(&ns, 0, sizeof(ns));
    build(j, &ns);
    drv_dns_opts_t o = {.resolv_conf = argv[4], .timeout_ms = 2000};
    drv_dns_t *s = NULL;
    if (drv_dns_open(argv[1], (uint16_t)strtol(argv[2], NULL, 10), &o, &s, &err) != DRV_OK ||
        drv_dns_update(s, &ns, &err) != DRV_OK) {
        fprintf(stderr, "dns_serve: %s\n", drv_error_msg(&err));
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        int fds[256];
        size_t n = drv_dns_fds(s, fds, 256);
        struct pollfd pf[256];
        for (size_t i = 0; i < n && i < 256; i++)
            pf[i] = (struct pollfd){fds[i], POLLIN, 0};
        int timeout = drv_dns_next_wakeup(s, drv_now_ms());
        if (timeout < 0 || timeout > 500)
            timeout = 500;
        int r = poll(pf, n < 256 ? n : 256, timeout);
        long long now = drv_now_ms();
        for (size_t i = 0; r > 0 && i < n && i < 256; i++)
            if (pf[i].revents)
                drv_dns_handle_fd(s, pf[i].fd, now);
        drv_dns_tick(s, drv_now_ms());
    }
    drv_dns_close(s);
    return 0;
}
