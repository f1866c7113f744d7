/* The agent's nftables table as text: Services (load balancing, affinity, traffic policies,
 * no endpoint, unhealthy peers, headless), NetworkPolicy (default deny, selectors, ipBlock
 * except, named ports) and bad input, from netstate structs built here (no parser, no nft:
 * test_nft.sh applies the table for real). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "net/nft.h"

#define SET(dst, src) assert_int_equal(drv_fmt((dst), sizeof(dst), "%s", (src)), DRV_OK)
#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* A node n1 (podCIDR 10.42.1.0/24) with one Service web 10.43.0.12:80/TCP (nodePort 30080)
 * and up to four endpoints; pods and policies as a test adds them. */
typedef struct fixture {
    drv_netstate_t ns;
    drv_net_service_t svc[2];
    drv_net_port_t ports[2];
    drv_net_endpoint_t eps[4];
    uint16_t tps[4][2];
    drv_net_pod_t pods[4];
    drv_net_namespace_t nss[2];
    drv_net_policy_t pols[4];
    drv_nft_local_t local;
    drv_nft_peer_health_t peers[2];
    uint32_t node_ips[1];
    drv_buf_t out;
} fixture_t;

static void fx_init(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    drv_netstate_t *ns = &f->ns;
    ns->present = true;
    SET(ns->node, "n1");
    ns->pod_cidr = (drv_net_cidr_t){IP(10, 42, 1, 0), 24};
    ns->cluster_cidr = (drv_net_cidr_t){IP(10, 42, 0, 0), 16};
    ns->service_cidr = (drv_net_cidr_t){IP(10, 43, 0, 0), 16};
    drv_net_service_t *s = &f->svc[0];
    SET(s->ns, "default");
    SET(s->name, "web");
    s->type = DRV_NET_SVC_NODE_PORT;
    s->cluster_ip = IP(10, 43, 0, 12);
    f->ports[0] = (drv_net_port_t){"http", IPPROTO_TCP, 80, 30080};
    s->ports = f->ports;
    s->nports = 1;
    s->endpoints = f->eps;
    ns->services = f->svc;
    ns->nservices = 1;
    ns->pods = f->pods;
    ns->namespaces = f->nss;
    ns->policies = f->pols;
    f->peers[0] = (drv_nft_peer_health_t){"n2", true};
    f->peers[1] = (drv_nft_peer_health_t){"n3", false};
    f->node_ips[0] = IP(192, 168, 1, 10);
    f->local = (drv_nft_local_t){.bridge = "drv1",
                                 .wg_if = "drover-wg",
                                 .node_ips = f->node_ips,
                                 .nnode_ips = 1,
                                 .dns_ip = IP(10, 42, 1, 1),
                                 .peers = f->peers,
                                 .npeers = 2};
    drv_buf_init(&f->out, DRV_NFT_SCRIPT_MAX);
}

static void fx_free(fixture_t *f)
{
    for (size_t i = 0; i < f->ns.npods; i++) {
        cJSON_Delete(f->pods[i].labels);
        cJSON_Delete(f->pods[i].ports);
    }
    for (size_t i = 0; i < f->ns.nnamespaces; i++)
        cJSON_Delete(f->nss[i].labels);
    for (size_t i = 0; i < f->ns.npolicies; i++)
        cJSON_Delete(f->pols[i].object);
    drv_buf_free(&f->out);
}

static void add_ep(fixture_t *f, uint32_t ip, const char *node, bool ready, uint16_t tp)
{
    drv_net_service_t *s = &f->svc[0];
    drv_net_endpoint_t *e = &f->eps[s->nendpoints];
    e->ip = ip;
    SET(e->node, node);
    e->ready = e->serving = ready;
    f->tps[s->nendpoints][0] = tp;
    e->target_ports = f->tps[s->nendpoints];
    s->nendpoints++;
}

static void add_pod(fixture_t *f, uint32_t ip, const char *ns, const char *node, const char *labels,
                    const char *ports)
{
    drv_net_pod_t *p = &f->pods[f->ns.npods++];
    p->ip = ip;
    SET(p->ns, ns);
    SET(p->node, node);
    p->labels = cJSON_Parse(labels);
    p->ports = cJSON_Parse(ports ? ports : "[]");
    assert_non_null(p->labels);
    assert_non_null(p->ports);
}

static void add_ns(fixture_t *f, const char *name, const char *labels)
{
    drv_net_namespace_t *n = &f->nss[f->ns.nnamespaces++];
    SET(n->name, name);
    n->labels = cJSON_Parse(labels);
    assert_non_null(n->labels);
}

static void add_policy(fixture_t *f, const char *ns, const char *name, const char *spec)
{
    drv_net_policy_t *q = &f->pols[f->ns.npolicies++];
    SET(q->ns, ns);
    SET(q->name, name);
    q->object = cJSON_CreateObject();
    cJSON *s = cJSON_Parse(spec);
    assert_non_null(s);
    cJSON_AddItemToObject(q->object, "spec", s);
}

static const char *render(fixture_t *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_nft_render(&f->ns, &f->local, &f->out, &err);
    if (rc != DRV_OK)
        fail_msg("render: %s", drv_error_msg(&err));
    return drv_buf_str(&f->out);
}

#define assert_has(hay, needle)                                                                    \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("missing \"%s\" in:\n%s", (needle), (hay));                                   \
    } while (0)
#define assert_lacks(hay, needle)                                                                  \
    do {                                                                                           \
        if (strstr((hay), (needle)) != NULL)                                                       \
            fail_msg("unexpected \"%s\" in:\n%s", (needle), (hay));                                \
    } while (0)

static void test_two_endpoints_numgen(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    add_ep(&f, IP(10, 42, 1, 3), "n1", true, 8080);
    add_ep(&f, IP(10, 42, 2, 7), "n2", true, 8080);
    const char *s = render(&f);
    /* Replaces the table in one transaction. */
    assert_int_equal(strncmp(s,
                             "table inet drover {}\ndelete table inet drover\n"
                             "table inet drover {\n",
                             63),
                     0);
    assert_has(s, "numgen random mod 2 vmap { 0 : goto e0p0k0, 1 : goto e0p0k1 }");
    assert_has(s, "10.43.0.12 . tcp . 80 : goto s0p0");
    assert_has(s, "meta l4proto tcp dnat ip to 10.42.1.3:8080");
    assert_has(s, "meta l4proto tcp dnat ip to 10.42.2.7:8080");
    /* Hairpin, and the node/outside reaching the ClusterIP, are masqueraded. */
    assert_has(s, "ip saddr 10.42.1.3 meta mark set meta mark | 0x4000");
    assert_has(s, "ip saddr != 10.42.0.0/16 meta mark set meta mark | 0x4000");
    /* NodePort, Cluster policy: masquerade, all endpoints. */
    assert_has(s, "tcp . 30080 : goto x0p0");
    assert_has(s, "chain x0p0 {\n\t\tmeta mark set meta mark | 0x4000\n\t\tnumgen random mod 2");
    assert_has(s, "meta mark & 0x4000 == 0x4000 masquerade");
    assert_has(s, "ip saddr 10.42.1.0/24 ip daddr != 10.42.0.0/16 masquerade");
    /* Cluster DNS, fail-closed. */
    assert_has(s, "ip daddr 10.43.0.10 meta l4proto { tcp, udp } th dport 53 dnat ip to 10.42.1.1");
    assert_has(s, "ip daddr 10.42.0.0/16 ip daddr != 10.42.1.0/24 oifname != \"drover-wg\" drop");
    assert_lacks(s, "jhash");
    fx_free(&f);
}

static void test_client_ip_affinity(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    f.svc[0].affinity_client_ip = true;
    add_ep(&f, IP(10, 42, 1, 3), "n1", true, 8080);
    add_ep(&f, IP(10, 42, 2, 7), "n2", true, 8080);
    const char *s = render(&f);
    assert_has(s, "jhash ip saddr mod 2 vmap { 0 : goto e0p0k0, 1 : goto e0p0k1 }");
    assert_lacks(s, "numgen");
    fx_free(&f);
}

static void test_traffic_policy_local(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    f.svc[0].internal_local = true;
    f.svc[0].external_local = true;
    add_ep(&f, IP(10, 42, 2, 7), "n2", true, 8080);
    add_ep(&f, IP(10, 42, 1, 3), "n1", true, 8080);
    const char *s = render(&f);
    /* Only the local endpoint (index 1); the external path keeps the client's address. */
    assert_has(s, "chain s0p0 {\n\t\tip saddr != 10.42.0.0/16 meta mark set meta mark | 0x4000\n"
                  "\t\tgoto e0p0k1\n\t}");
    assert_has(s, "chain x0p0 {\n\t\tgoto e0p0k1\n\t}");
    fx_free(&f);

    /* No local endpoint: dropped, not sent to another node. */
    fx_init(&f);
    f.svc[0].internal_local = true;
    f.svc[0].external_local = true;
    add_ep(&f, IP(10, 42, 2, 7), "n2", true, 8080);
    s = render(&f);
    assert_has(s, "meta mark | 0x4000\n\t\tdrop\n\t}");
    assert_has(s, "chain x0p0 {\n\t\tdrop\n\t}");
    fx_free(&f);
}

static void test_no_endpoint_rejects(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    f.svc[0].type = DRV_NET_SVC_LOAD_BALANCER;
    add_ep(&f, IP(10, 42, 1, 3), "n1", false, 8080); /* not ready */
    add_ep(&f, IP(10, 42, 1, 4), "n1", true, 0);     /* lacks the named port */
    const char *s = render(&f);
    assert_lacks(s, "chain s0p0");
    assert_lacks(s, "dnat ip to 10.42.1.3");
    assert_lacks(s, "dnat ip to 10.42.1.4");
    assert_has(s, "set no_endpoints {\n\t\ttype ipv4_addr . inet_proto . inet_service\n"
                  "\t\telements = { 10.43.0.12 . tcp . 80,\n\t\t\t     192.168.1.10 . tcp . 80 }");
    assert_has(s, "set no_endpoints_np {\n\t\ttype inet_proto . inet_service\n"
                  "\t\telements = { tcp . 30080 }");
    assert_has(s, "ip daddr . meta l4proto . th dport @no_endpoints goto reject_svc");
    assert_has(s, "meta l4proto tcp reject with tcp reset");
    fx_free(&f);
}

static void test_load_balancer_on_node_ips(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    f.svc[0].type = DRV_NET_SVC_LOAD_BALANCER;
    add_ep(&f, IP(10, 42, 1, 3), "n1", true, 8080);
    const char *s = render(&f);
    assert_has(s, "192.168.1.10 . tcp . 80 : goto x0p0");
    assert_has(s, "tcp . 30080 : goto x0p0");
    fx_free(&f);
}

static void test_unhealthy_peer_and_headless(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    add_ep(&f, IP(10, 42, 3, 5), "n3", true, 8080); /* stale handshake */
    add_ep(&f, IP(10, 42, 2, 7), "n2", true, 8080);
    const char *s = render(&f);
    assert_has(s, "chain s0p0 {\n\t\tip saddr != 10.42.0.0/16 meta mark set meta mark | 0x4000\n"
                  "\t\tgoto e0p0k1\n");
    assert_lacks(s, "10.42.3.5");
    fx_free(&f);

    /* Only stale endpoints: kept, better than nothing. */
    fx_init(&f);
    add_ep(&f, IP(10, 42, 3, 5), "n3", true, 8080);
    s = render(&f);
    assert_has(s, "dnat ip to 10.42.3.5:8080");
    fx_free(&f);

    fx_init(&f);
    f.svc[0].headless = true;
    f.svc[0].cluster_ip = 0;
    add_ep(&f, IP(10, 42, 1, 3), "n1", true, 8080);
    s = render(&f);
    assert_lacks(s, "dnat ip to 10.42.1.3");
    assert_lacks(s, "chain s0p0");
    fx_free(&f);
}

/* Pods: 10.42.1.2 client (local), 10.42.1.3 web (local, http:8080), 10.42.2.7 in "other"
 * (remote, team=x). */
static void add_pods(fixture_t *f)
{
    add_pod(f, IP(10, 42, 1, 2), "default", "n1", "{\"app\":\"client\"}", NULL);
    add_pod(f, IP(10, 42, 1, 3), "default", "n1", "{\"app\":\"web\"}",
            "[{\"name\":\"http\",\"protocol\":\"TCP\",\"containerPort\":8080}]");
    add_pod(f, IP(10, 42, 2, 7), "other", "n2", "{\"app\":\"web\"}",
            "[{\"name\":\"http\",\"protocol\":\"TCP\",\"containerPort\":9090}]");
    add_ns(f, "default", "{\"kubernetes.io/metadata.name\":\"default\"}");
    add_ns(f, "other", "{\"kubernetes.io/metadata.name\":\"other\",\"team\":\"x\"}");
}

static void test_default_deny(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    add_pods(&f);
    add_policy(
        &f, "default", "deny",
        "{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"policyTypes\":[\"Ingress\"]}");
    const char *s = render(&f);
    /* The web pod (pods index 1) gets a chain that only drops; the client none. */
    assert_has(s, "chain in1 {\n\t\tdrop\n\t}");
    assert_has(s, "map ingress_pods {\n\t\ttype ipv4_addr : verdict\n"
                  "\t\telements = { 10.42.1.3 : jump in1 }");
    assert_lacks(s, "chain in0");
    assert_lacks(s, "chain out");
    /* Known local pods; unknown ones of the podCIDR are dropped; replies pass first. */
    assert_has(s, "set local_pods {\n\t\ttype ipv4_addr\n\t\telements = { 10.42.1.2, 10.42.1.3 }");
    assert_has(s, "ct state established,related accept\n"
                  "\t\tip saddr 10.42.1.0/24 ip saddr != @local_pods drop\n"
                  "\t\tip daddr 10.42.1.0/24 ip daddr != @local_pods drop\n");
    fx_free(&f);
}

static void test_selectors_ipblock_named_port(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    add_pods(&f);
    add_policy(
        &f, "default", "allow",
        "{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},"
        "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}}},"
        "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"x\"}}},"
        "{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}],"
        "\"ports\":[{\"port\":\"http\"},{\"protocol\":\"UDP\",\"port\":5000,\"endPort\":5010}]}]}");
    add_policy(
        &f, "default", "egress",
        "{\"podSelector\":{\"matchLabels\":{\"app\":\"client\"}},\"policyTypes\":[\"Egress\"],"
        "\"egress\":[{\"to\":[{\"namespaceSelector\":{},\"podSelector\":{\"matchLabels\":"
        "{\"app\":\"web\"}}}],\"ports\":[{\"port\":\"http\"}]}]}");
    const char *s = render(&f);
    /* Peers as named sets: the client (same namespace), pods of team=x namespaces. */
    assert_has(s, "set q0i0p0 {\n\t\ttype ipv4_addr\n\t\telements = { 10.42.1.2 }");
    assert_has(s, "set q0i0p1 {\n\t\ttype ipv4_addr\n\t\telements = { 10.42.2.7 }");
    /* The named port resolved against the destination (web: 8080); endPort a range. */
    assert_has(s, "ip saddr @q0i0p0 meta l4proto tcp th dport 8080 accept");
    assert_has(s, "ip saddr @q0i0p1 meta l4proto udp th dport 5000-5010 accept");
    assert_has(s, "ip saddr 10.0.0.0/8 ip saddr != { 10.1.0.0/16 } meta l4proto tcp th dport 8080 "
                  "accept");
    /* Egress named port: each destination pod's own number. */
    assert_has(s, "set q1e0n0 {\n\t\ttype ipv4_addr . inet_proto . inet_service\n"
                  "\t\telements = { 10.42.1.3 . tcp . 8080, 10.42.2.7 . tcp . 9090 }");
    assert_has(s, "chain out0 {\n\t\tip daddr . meta l4proto . th dport @q1e0n0 return\n"
                  "\t\tdrop\n\t}");
    assert_has(s, "elements = { 10.42.1.2 : jump out0 }");
    fx_free(&f);
}

static void test_allow_all_rule_and_other_namespace(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    add_pods(&f);
    /* A policy of another namespace selects nothing here; an empty rule allows everything. */
    add_policy(&f, "other", "deny", "{\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}");
    add_policy(&f, "default", "all", "{\"podSelector\":{},\"ingress\":[{}]}");
    const char *s = render(&f);
    assert_has(s, "chain in0 {\n\t\taccept\n\t\tdrop\n\t}");
    assert_has(s, "chain in1 {\n\t\taccept\n\t\tdrop\n\t}");
    fx_free(&f);
}

static void test_bad_input(void **state)
{
    (void)state;
    fixture_t f;
    drv_error_t err = DRV_ERROR_INIT;
    fx_init(&f);
    add_pods(&f);
    add_policy(&f, "default", "bad",
               "{\"podSelector\":{},\"ingress\":[{\"ports\":[{\"protocol\":\"ICMP\"}]}]}");
    assert_int_equal(drv_buf_puts(&f.out, "keep"), DRV_OK);
    assert_int_equal(drv_nft_render(&f.ns, &f.local, &f.out, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "networkPolicies[default/bad].spec.ingress[0]."
                                             "ports[0].protocol: not TCP, UDP or SCTP");
    assert_string_equal(drv_buf_str(&f.out), "keep");
    fx_free(&f);

    fx_init(&f);
    f.local.wg_if = "wg\"; flush ruleset";
    drv_error_clear(&err);
    assert_int_equal(drv_nft_render(&f.ns, &f.local, &f.out, &err), DRV_ERR_INVALID);
    f.ns.present = false;
    f.local.wg_if = "drover-wg";
    assert_int_equal(drv_nft_render(&f.ns, &f.local, &f.out, &err), DRV_ERR_INVALID);
    assert_int_equal(f.out.len, 0);
    fx_free(&f);
}

/* A pod the agent knows before the hub has its IP is in the table (policies are in place
 * before it starts). */
static void test_local_pod_before_hub(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    add_pods(&f);
    cJSON *labels = cJSON_Parse("{\"app\":\"web\"}");
    drv_nft_pod_t lp = {IP(10, 42, 1, 9), "default", "new", labels, NULL};
    f.local.pods = &lp;
    f.local.npods = 1;
    add_policy(
        &f, "default", "deny",
        "{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"policyTypes\":[\"Ingress\"]}");
    const char *s = render(&f);
    assert_has(s, "elements = { 10.42.1.9, 10.42.1.2, 10.42.1.3 }");
    assert_has(s, "10.42.1.9 : jump in0");
    cJSON_Delete(labels);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_endpoints_numgen),
        cmocka_unit_test(test_client_ip_affinity),
        cmocka_unit_test(test_traffic_policy_local),
        cmocka_unit_test(test_no_endpoint_rejects),
        cmocka_unit_test(test_load_balancer_on_node_ips),
        cmocka_unit_test(test_unhealthy_peer_and_headless),
        cmocka_unit_test(test_default_deny),
        cmocka_unit_test(test_selectors_ipblock_named_port),
        cmocka_unit_test(test_allow_all_rule_and_other_namespace),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_local_pod_before_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
