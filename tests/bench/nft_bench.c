/* nft_bench: what an update of the node's nftables table costs the agent at cluster size
 * (issue 17): a "network" section with N Services of 2 ready endpoints each (pods spread over
 * nodes, this node holding its share) parsed (drv_netstate_parse), rendered (drv_nft_render)
 * and applied with `nft -f -` (drv_nft_apply), beside a baseline of the same work with few
 * Services. Runs in a network namespace of its own (unshare), so the host's table is never
 * touched. Prints figures and checks only that they were produced: exits 1 when a measurement
 * cannot be made or a figure it prints is zero.
 *   nft_bench [SERVICES [BASELINE [RUNS]]]      (default 1000 10 7; needs root)
 *   BENCH_SHORT=1: default 100 10 3 (CI: ctest -L bench)
 * See docs/BENCHMARKS.md. */
#include <sched.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/error.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/netstate.h"
#include "net/nft.h"

#define BENCH_PODS_PER_NODE 200 /* a node's /24 holds them with room to spare */
#define BENCH_NODES_MIN 10
#define BENCH_SERVICES_MAX 20000 /* DRV_NET_SERVICES_MAX; 2 pods each fit in 200 /24s */
#define BENCH_RUNS_MAX 1000

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t nodes_for(uint32_t services)
{
    uint32_t n = (2 * services + BENCH_PODS_PER_NODE - 1) / BENCH_PODS_PER_NODE;
    return n < BENCH_NODES_MIN ? BENCH_NODES_MIN : n;
}

/* Pod j runs on node (j % nodes) + 1, at 10.42.<node>.<j / nodes + 2>. */
static void pod_ip(uint32_t j, uint32_t nodes, char out[16])
{
    drv_fmt_cut(out, 16, "10.42.%u.%u", j % nodes + 1, j / nodes + 2);
}

static cJSON *add_obj(cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The network section node n1 receives: `services` Services of one port (http 80 -> 8080),
 * each selecting 2 pods, every pod in `pods`, one peer per other node. The endpoint
 * `unready` (an index into all endpoints, or UINT32_MAX for none) is reported not ready, as
 * after a failing readiness probe. NULL when out of memory. */
static cJSON *make_network(uint32_t services, uint32_t unready)
{
    uint32_t nodes = nodes_for(services);
    _cleanup_cjson_ cJSON *net = cJSON_CreateObject();
    char s[128], ip[16];
    if (!net || !cJSON_AddStringToObject(net, "podCIDR", "10.42.1.0/24") ||
        !cJSON_AddStringToObject(net, "clusterCIDR", "10.42.0.0/16") ||
        !cJSON_AddStringToObject(net, "serviceCIDR", "10.43.0.0/16") ||
        !cJSON_AddStringToObject(net, "clusterDomain", "cluster.local") ||
        !cJSON_AddNumberToObject(net, "listenPort", 51820) ||
        !cJSON_AddNumberToObject(net, "mtu", 1380) ||
        !cJSON_AddNumberToObject(net, "keepaliveSeconds", 25))
        return NULL;
    cJSON *peers = cJSON_AddArrayToObject(net, "peers");
    cJSON *svcs = cJSON_AddArrayToObject(net, "services");
    cJSON *pods = cJSON_AddArrayToObject(net, "pods");
    cJSON *nss = cJSON_AddArrayToObject(net, "namespaces");
    if (!peers || !svcs || !pods || !nss || !cJSON_AddArrayToObject(net, "networkPolicies"))
        return NULL;
    for (uint32_t k = 2; k <= nodes; k++) {
        cJSON *p = add_obj(peers);
        char key[DRV_NET_KEY_LEN + 1];
        memset(key, 'A', DRV_NET_KEY_LEN - 1);
        key[0] = b64[k / 64 % 64];
        key[1] = b64[k % 64];
        key[DRV_NET_KEY_LEN - 1] = '=';
        key[DRV_NET_KEY_LEN] = '\0';
        char name[16], cidr[24], ep[32];
        drv_fmt_cut(name, sizeof(name), "n%u", k);
        drv_fmt_cut(cidr, sizeof(cidr), "10.42.%u.0/24", k);
        drv_fmt_cut(ep, sizeof(ep), "192.168.%u.%u:51820", 100 + k / 250, k % 250 + 2);
        if (!p || !cJSON_AddStringToObject(p, "node", name) ||
            !cJSON_AddStringToObject(p, "publicKey", key) ||
            !cJSON_AddStringToObject(p, "podCIDR", cidr) ||
            !cJSON_AddStringToObject(p, "endpoint", ep) || !cJSON_AddStringToObject(p, "via", "") ||
            !cJSON_AddFalseToObject(p, "relay"))
            return NULL;
    }
    cJSON *dflt = add_obj(nss);
    cJSON *dl = dflt ? cJSON_AddObjectToObject(dflt, "labels") : NULL;
    if (!dl || !cJSON_AddStringToObject(dflt, "name", "default") ||
        !cJSON_AddStringToObject(dl, "kubernetes.io/metadata.name", "default"))
        return NULL;
    for (uint32_t i = 0; i < services; i++) {
        cJSON *sv = add_obj(svcs);
        drv_fmt_cut(s, sizeof(s), "10.43.%u.%u", i / 250 + 1, i % 250 + 2);
        char name[32];
        drv_fmt_cut(name, sizeof(name), "svc-%u", i);
        if (!sv || !cJSON_AddStringToObject(sv, "namespace", "default") ||
            !cJSON_AddStringToObject(sv, "name", name) ||
            !cJSON_AddStringToObject(sv, "type", "ClusterIP") ||
            !cJSON_AddStringToObject(sv, "clusterIP", s) ||
            !cJSON_AddStringToObject(sv, "sessionAffinity", "None") ||
            !cJSON_AddNumberToObject(sv, "affinityTimeoutSeconds", 10800) ||
            !cJSON_AddStringToObject(sv, "internalTrafficPolicy", "Cluster") ||
            !cJSON_AddStringToObject(sv, "externalTrafficPolicy", "Cluster") ||
            !cJSON_AddFalseToObject(sv, "publishNotReadyAddresses"))
            return NULL;
        cJSON *ports = cJSON_AddArrayToObject(sv, "ports");
        cJSON *pt = ports ? add_obj(ports) : NULL;
        cJSON *eps = cJSON_AddArrayToObject(sv, "endpoints");
        if (!pt || !eps || !cJSON_AddStringToObject(pt, "name", "http") ||
            !cJSON_AddStringToObject(pt, "protocol", "TCP") ||
            !cJSON_AddNumberToObject(pt, "port", 80) || !cJSON_AddNumberToObject(pt, "nodePort", 0))
            return NULL;
        for (uint32_t e = 0; e < 2; e++) {
            uint32_t j = 2 * i + e;
            char pod[32], node[16];
            pod_ip(j, nodes, ip);
            drv_fmt_cut(pod, sizeof(pod), "%s-%u", name, e);
            drv_fmt_cut(node, sizeof(node), "n%u", j % nodes + 1);
            cJSON *ep = add_obj(eps);
            int tp = 8080;
            cJSON *tps = cJSON_CreateIntArray(&tp, 1);
            if (!ep || !tps || !cJSON_AddItemToObject(ep, "targetPorts", tps)) {
                cJSON_Delete(tps);
                return NULL;
            }
            bool ready = j != unready;
            if (!cJSON_AddStringToObject(ep, "ip", ip) ||
                !cJSON_AddStringToObject(ep, "node", node) ||
                !cJSON_AddStringToObject(ep, "pod", pod) ||
                !cJSON_AddStringToObject(ep, "hostname", "") ||
                !cJSON_AddBoolToObject(ep, "ready", ready) ||
                !cJSON_AddBoolToObject(ep, "serving", ready) ||
                !cJSON_AddFalseToObject(ep, "terminating"))
                return NULL;
            cJSON *p = add_obj(pods);
            cJSON *lb = p ? cJSON_AddObjectToObject(p, "labels") : NULL;
            cJSON *pp = p ? cJSON_AddArrayToObject(p, "ports") : NULL;
            cJSON *cp = pp ? add_obj(pp) : NULL;
            if (!cp || !lb || !cJSON_AddStringToObject(p, "ip", ip) ||
                !cJSON_AddStringToObject(p, "namespace", "default") ||
                !cJSON_AddStringToObject(p, "name", pod) ||
                !cJSON_AddStringToObject(p, "node", node) ||
                !cJSON_AddStringToObject(lb, "app", name) ||
                !cJSON_AddStringToObject(cp, "name", "http") ||
                !cJSON_AddStringToObject(cp, "protocol", "TCP") ||
                !cJSON_AddNumberToObject(cp, "containerPort", 8080))
                return NULL;
        }
    }
    return TAKE_PTR(net);
}

typedef struct sample {
    int64_t parse_ns, render_ns, apply_ns, reapply_ns;
} sample_t;

typedef struct result {
    uint32_t services, nodes, local_pods;
    size_t bytes, lines;
    int64_t create_ns; /* the first apply, the table absent */
    sample_t *runs;
    uint32_t nruns;
} result_t;

/* Parses, renders (this node's pods as its local pods, every peer recent) into out. */
static bool render(const cJSON *net, drv_buf_t *out, sample_t *t, uint32_t *local_pods)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_netstate_t ns = {0};
    int64_t t0 = mono_ns();
    if (drv_netstate_parse(net, "n1", &ns, &err) != DRV_OK) {
        fprintf(stderr, "nft_bench: parse: %s\n", drv_error_msg(&err));
        return false;
    }
    int64_t t1 = mono_ns();
    drv_nft_pod_t *lp = calloc(ns.npods + 1, sizeof(*lp));
    drv_nft_peer_health_t *ph = calloc(ns.npeers + 1, sizeof(*ph));
    bool ok = lp && ph;
    size_t nlp = 0;
    for (size_t i = 0; ok && i < ns.npods; i++)
        if (!strcmp(ns.pods[i].node, ns.node))
            lp[nlp++] = (drv_nft_pod_t){ns.pods[i].ip, ns.pods[i].ns, ns.pods[i].name,
                                        ns.pods[i].labels, ns.pods[i].ports};
    for (size_t i = 0; ok && i < ns.npeers; i++)
        ph[i] = (drv_nft_peer_health_t){ns.peers[i].node, true};
    uint32_t node_ip = 0xc0a80a01; /* 192.168.10.1 */
    drv_nft_local_t local = {.bridge = "drv1",
                             .wg_if = "drover-wg",
                             .node_ips = &node_ip,
                             .nnode_ips = 1,
                             .dns_ip = 0x0a2a0101, /* 10.42.1.1 */
                             .pods = lp,
                             .npods = nlp,
                             .peers = ph,
                             .npeers = ns.npeers};
    int64_t t2 = mono_ns();
    if (ok && drv_nft_render(&ns, &local, out, &err) != DRV_OK) {
        fprintf(stderr, "nft_bench: render: %s\n", drv_error_msg(&err));
        ok = false;
    }
    int64_t t3 = mono_ns();
    if (!lp || !ph)
        fprintf(stderr, "nft_bench: out of memory\n");
    free(lp);
    free(ph);
    drv_netstate_free(&ns);
    t->parse_ns = t1 - t0;
    t->render_ns = t3 - t2;
    *local_pods = (uint32_t)nlp;
    return ok;
}

static bool apply(const drv_buf_t *script, int64_t *ns_out)
{
    drv_error_t err = DRV_ERROR_INIT;
    int64_t t0 = mono_ns();
    if (drv_nft_apply(script->data, script->len, &err) != DRV_OK) {
        fprintf(stderr, "nft_bench: apply: %s\n", drv_error_msg(&err));
        return false;
    }
    *ns_out = mono_ns() - t0;
    return true;
}

/* One size: the table created from nothing, then RUNS updates, each flipping one endpoint's
 * readiness (what a failing probe makes the hub send) and re-applying the same script once
 * more (a document that changed nothing of the table). */
static bool bench_size(uint32_t services, uint32_t runs, result_t *r)
{
    drv_error_t err = DRV_ERROR_INIT;
    r->services = services;
    r->nodes = nodes_for(services);
    r->nruns = 0;
    if (drv_nft_remove(&err) != DRV_OK) {
        fprintf(stderr, "nft_bench: remove: %s\n", drv_error_msg(&err));
        return false;
    }
    _cleanup_cjson_ cJSON *base = make_network(services, UINT32_MAX);
    if (!base) {
        fprintf(stderr, "nft_bench: out of memory building %u Services\n", services);
        return false;
    }
    _cleanup_buf_ drv_buf_t script = DRV_BUF_INIT(DRV_NFT_SCRIPT_MAX);
    sample_t first = {0};
    if (!render(base, &script, &first, &r->local_pods) || !apply(&script, &r->create_ns))
        return false;
    r->bytes = script.len;
    r->lines = 0;
    for (size_t i = 0; i < script.len; i++)
        r->lines += script.data[i] == '\n';
    for (uint32_t k = 0; k < runs; k++) {
        /* Alternate: endpoint k (its pod on this node or another) not ready, then all ready. */
        _cleanup_cjson_ cJSON *net =
            make_network(services, k % 2 ? UINT32_MAX : k % (2 * services));
        _cleanup_buf_ drv_buf_t next = DRV_BUF_INIT(DRV_NFT_SCRIPT_MAX);
        sample_t *t = &r->runs[k];
        uint32_t lp;
        if (!net || !render(net, &next, t, &lp))
            return false;
        if (next.len == script.len && !memcmp(next.data, script.data, next.len)) {
            fprintf(stderr, "nft_bench: a readiness change left the script as it was: "
                            "nothing to time\n");
            return false;
        }
        if (!apply(&next, &t->apply_ns) || !apply(&next, &t->reapply_ns))
            return false;
        drv_buf_free(&script);
        script = next;
        next = (drv_buf_t)DRV_BUF_INIT(DRV_NFT_SCRIPT_MAX);
        r->nruns++;
    }
    return drv_nft_remove(&err) == DRV_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "p50 X ms, max Y ms" of the field at offset off of every run. */
static void print_stat(const char *label, const result_t *r, size_t off)
{
    int64_t v[BENCH_RUNS_MAX];
    for (uint32_t k = 0; k < r->nruns; k++)
        memcpy(&v[k], (const char *)&r->runs[k] + off, sizeof(int64_t));
    qsort(v, r->nruns, sizeof(v[0]), cmp_i64);
    printf("  %-38s p50 %9.2f ms  max %9.2f ms\n", label, (double)v[(r->nruns - 1) / 2] / 1e6,
           (double)v[r->nruns - 1] / 1e6);
}

static void print_result(const result_t *r)
{
    printf("%u Services x 2 endpoints (%u nodes, %u local pods), %u runs:\n", r->services, r->nodes,
           r->local_pods, r->nruns);
    printf("  script: %zu bytes, %zu lines\n", r->bytes, r->lines);
    printf("  %-38s      %9.2f ms\n", "first apply (table absent)", (double)r->create_ns / 1e6);
    print_stat("parse (drv_netstate_parse)", r, offsetof(sample_t, parse_ns));
    print_stat("render (drv_nft_render)", r, offsetof(sample_t, render_ns));
    print_stat("apply (nft -f, one endpoint flipped)", r, offsetof(sample_t, apply_ns));
    int64_t tot[BENCH_RUNS_MAX];
    for (uint32_t k = 0; k < r->nruns; k++)
        tot[k] = r->runs[k].parse_ns + r->runs[k].render_ns + r->runs[k].apply_ns;
    qsort(tot, r->nruns, sizeof(tot[0]), cmp_i64);
    printf("  %-38s p50 %9.2f ms  max %9.2f ms\n", "update = parse + render + apply",
           (double)tot[(r->nruns - 1) / 2] / 1e6, (double)tot[r->nruns - 1] / 1e6);
    print_stat("no-change re-apply (nft -f)", r, offsetof(sample_t, reapply_ns));
}

/* Every figure print_result shows, above zero: a zero is a step that measured nothing. */
static bool measured(const result_t *r)
{
    bool ok = r->nruns > 0 && r->bytes > 0 && r->lines > 0 && r->create_ns > 0;
    for (uint32_t k = 0; ok && k < r->nruns; k++)
        ok = r->runs[k].parse_ns > 0 && r->runs[k].render_ns > 0 && r->runs[k].apply_ns > 0 &&
             r->runs[k].reapply_ns > 0;
    if (!ok)
        fprintf(stderr, "nft_bench: NOT MEASURED: %u Services: a figure is zero\n", r->services);
    return ok;
}

static bool arg_u32(const char *s, uint32_t min, uint32_t max, const char *what, uint32_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        fprintf(stderr, "nft_bench: %s: expected %u-%u, got \"%s\"\n", what, min, max, s);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

int main(int argc, char **argv)
{
    uint32_t services = 1000, baseline = 10, runs = 7;
    const char *short_mode = getenv("BENCH_SHORT");
    if (short_mode && !strcmp(short_mode, "1")) {
        services = 100;
        runs = 3;
    }
    if (argc > 4 || (argc > 1 && !arg_u32(argv[1], 1, BENCH_SERVICES_MAX, "SERVICES", &services)) ||
        (argc > 2 && !arg_u32(argv[2], 1, BENCH_SERVICES_MAX, "BASELINE", &baseline)) ||
        (argc > 3 && !arg_u32(argv[3], 1, BENCH_RUNS_MAX, "RUNS", &runs))) {
        fprintf(stderr, "usage: nft_bench [SERVICES [BASELINE [RUNS]]]\n");
        return 2;
    }
    /* Our own network namespace: the table we create and delete is nobody else's. */
    if (unshare(CLONE_NEWNET) != 0) {
        perror("nft_bench: unshare(CLONE_NEWNET) (needs root)");
        return 1;
    }
    _cleanup_free_ sample_t *rb = calloc(runs, sizeof(*rb));
    _cleanup_free_ sample_t *rs = calloc(runs, sizeof(*rs));
    result_t base = {.runs = rb}, big = {.runs = rs};
    if (!rb || !rs || !bench_size(baseline, runs, &base) || !bench_size(services, runs, &big)) {
        fprintf(stderr, "nft_bench: measurement failed\n");
        return 1;
    }
    printf("nftables table update (agent/net/nft.c, nft -f in a fresh network namespace)\n");
    print_result(&base);
    print_result(&big);
    bool ok = measured(&base);
    ok = measured(&big) && ok;
    return ok ? 0 : 1;
}
