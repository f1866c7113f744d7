/* The network section of a desired state: a full valid section reads into the structs in
 * document order, and each hostile or broken variant is refused with the field's path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "drover/netstate.h"
#include "drover/protocol.h"

#define KEY1 "MVvPsisfzU83epkSyfQMVlFE74SGKgyhX/dhABsWTAA="
#define KEY2 "b4IgE+a09HhaqoARo6h4+WLMxuWPw5LKqvAeDMzmS0A="
#define KEY3 "FhPBd9IqGQQ0bTYc9uBNik6KdhSJ+Bp1lSwdPtBJGBU="

/* Node pi-1's view: two direct peers and one behind NAT reached via the relay pi-2. */
static const char *const VALID =
    "{\"podCIDR\":\"10.42.1.0/24\",\"clusterCIDR\":\"10.42.0.0/16\","
    "\"serviceCIDR\":\"10.43.0.0/16\",\"clusterDomain\":\"cluster.local\",\"listenPort\":51820,"
    "\"mtu\":1380,\"keepaliveSeconds\":25,"
    "\"peers\":["
    "{\"node\":\"pi-2\",\"publicKey\":\"" KEY1 "\",\"podCIDR\":\"10.42.2.0/24\","
    "\"endpoint\":\"192.168.1.20:51820\",\"via\":\"\",\"relay\":true},"
    "{\"node\":\"pi-3\",\"publicKey\":\"" KEY2 "\",\"podCIDR\":\"10.42.3.0/24\","
    "\"endpoint\":\"\",\"via\":\"pi-2\",\"relay\":false},"
    "{\"node\":\"pi-4\",\"publicKey\":\"" KEY3 "\",\"podCIDR\":\"10.42.4.0/24\","
    "\"endpoint\":\"[fd00::4]:51821\"}],"
    "\"services\":["
    "{\"namespace\":\"default\",\"name\":\"web\",\"type\":\"ClusterIP\",\"clusterIP\":\"10.43.0."
    "12\","
    "\"sessionAffinity\":\"ClientIP\",\"affinityTimeoutSeconds\":600,"
    "\"internalTrafficPolicy\":\"Local\",\"externalTrafficPolicy\":\"Cluster\","
    "\"publishNotReadyAddresses\":false,"
    "\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"nodePort\":0},"
    "{\"name\":\"dns\",\"protocol\":\"UDP\",\"port\":53,\"nodePort\":0}],"
    "\"endpoints\":[{\"ip\":\"10.42.2.7\",\"node\":\"pi-2\",\"pod\":\"web-abc\",\"hostname\":\"\","
    "\"ready\":true,\"serving\":true,\"terminating\":false,\"targetPorts\":[8080,0]}]},"
    "{\"namespace\":\"default\",\"name\":\"db\",\"clusterIP\":\"None\","
    "\"ports\":[{\"port\":5432}],"
    "\"endpoints\":[{\"ip\":\"10.42.3.9\",\"node\":\"pi-3\",\"pod\":\"db-0\",\"hostname\":\"db-0\","
    "\"ready\":false,\"targetPorts\":[5432]}]},"
    "{\"namespace\":\"shop\",\"name\":\"front\",\"type\":\"NodePort\",\"clusterIP\":\"10.43.1.1\","
    "\"externalTrafficPolicy\":\"Local\","
    "\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"nodePort\":30080}],"
    "\"endpoints\":[]}],"
    "\"pods\":[{\"ip\":\"10.42.2.7\",\"namespace\":\"default\",\"name\":\"web-abc\",\"node\":\"pi-"
    "2\","
    "\"labels\":{\"app\":\"web\"},"
    "\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"containerPort\":8080}]},"
    "{\"ip\":\"10.42.3.9\",\"namespace\":\"default\",\"name\":\"db-0\",\"node\":\"pi-3\"}],"
    "\"namespaces\":[{\"name\":\"default\",\"labels\":{\"kubernetes.io/"
    "metadata.name\":\"default\"}},"
    "{\"name\":\"shop\",\"labels\":{\"team\":\"a\"}}],"
    "\"networkPolicies\":[{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
    "\"metadata\":{\"name\":\"db-only-web\",\"namespace\":\"default\"},"
    "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"policyTypes\":[\"Ingress\"],"
    "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"web\"}}}],"
    "\"ports\":[{\"protocol\":\"TCP\",\"port\":5432}]}]}}]}";

static cJSON *valid(void)
{
    cJSON *j = cJSON_Parse(VALID);
    assert_non_null(j);
    return j;
}

/* The element i of array key of obj. */
static cJSON *elem(cJSON *obj, const char *key, int i)
{
    cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(obj, key), i);
    assert_non_null(e);
    return e;
}

static void set_str(cJSON *obj, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    assert_non_null(cJSON_AddStringToObject(obj, key, v));
}

static void set_num(cJSON *obj, const char *key, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    assert_non_null(cJSON_AddNumberToObject(obj, key, v));
}

/* Parses net for pi-1 and expects a refusal whose message holds each of the parts. */
static void expect_bad(cJSON *net, const char *part1, const char *part2)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_netstate_t ns;
    memset(&ns, 0xa5, sizeof ns);
    drv_err_t rc = drv_netstate_parse(net, "pi-1", &ns, &err);
    if (rc == DRV_OK || strstr(drv_error_msg(&err), part1) == NULL ||
        (part2 != NULL && strstr(drv_error_msg(&err), part2) == NULL))
        fail_msg("got %d \"%s\", want \"%s\" and \"%s\"", rc, drv_error_msg(&err), part1,
                 part2 ? part2 : "");
    /* On failure out is zeroed. */
    assert_false(ns.present);
    assert_null(ns.peers);
    assert_null(ns.services);
    assert_null(ns.pods);
    assert_null(ns.policies);
    cJSON_Delete(net);
}

static void test_addresses(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    uint32_t ip = 0;
    char buf[19];
    assert_true(drv_net_ip_parse("10.42.1.5", &ip));
    assert_int_equal(ip, 0x0a2a0105u);
    drv_net_ip_format(ip, buf);
    assert_string_equal(buf, "10.42.1.5");
    assert_true(drv_net_ip_parse("0.0.0.0", &ip));
    assert_true(drv_net_ip_parse("255.255.255.255", &ip));
    const char *bad_ips[] = {"",         "10.42.1", "10.42.1.5.6", "010.42.1.5", "10.42.1.256",
                             "10.42.1.", "10..1.5", " 10.42.1.5",  "10.42.1.5 ", "1000.1.1.1",
                             "a.b.c.d"};
    for (size_t i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++)
        if (drv_net_ip_parse(bad_ips[i], &ip))
            fail_msg("accepted \"%s\"", bad_ips[i]);

    drv_net_cidr_t c;
    assert_int_equal(drv_net_cidr_parse("10.42.0.0/16", false, &c, &err), DRV_OK);
    assert_int_equal(c.addr, 0x0a2a0000u);
    assert_int_equal(c.prefix, 16);
    drv_net_cidr_format(c, buf);
    assert_string_equal(buf, "10.42.0.0/16");
    assert_int_equal(drv_net_cidr_parse("10.42.1.5/24", false, &c, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "host bits"));
    assert_int_equal(drv_net_cidr_parse("10.42.1.5/24", true, &c, &err), DRV_OK);
    assert_int_equal(c.addr, 0x0a2a0100u);
    assert_int_equal(drv_net_cidr_parse("0.0.0.0/0", false, &c, &err), DRV_OK);
    assert_int_equal(drv_net_cidr_parse("255.255.255.255/32", false, &c, &err), DRV_OK);
    drv_net_cidr_format(c, buf);
    assert_string_equal(buf, "255.255.255.255/32");
    const char *bad_cidrs[] = {"10.42.1.0/33", "10.42.1.0/", "10.42.1.0",    "10.42.1.0/024",
                               "10.42.1.0/2a", "/24",        "10.42.1.0/-1", "10.42.1.0/24/"};
    for (size_t i = 0; i < sizeof bad_cidrs / sizeof bad_cidrs[0]; i++)
        if (drv_net_cidr_parse(bad_cidrs[i], false, &c, &err) == DRV_OK)
            fail_msg("accepted \"%s\"", bad_cidrs[i]);

    drv_net_cidr_t a = {0x0a2a0000u, 16}, b = {0x0a2a0100u, 24}, d = {0x0a2b0000u, 16};
    assert_true(drv_net_cidr_contains(a, 0x0a2a0105u));
    assert_false(drv_net_cidr_contains(b, 0x0a2a0205u));
    assert_true(drv_net_cidr_contains((drv_net_cidr_t){0, 0}, 0xffffffffu));
    assert_true(drv_net_cidr_overlaps(a, b));
    assert_true(drv_net_cidr_overlaps(b, a));
    assert_false(drv_net_cidr_overlaps(a, d));
    assert_true(drv_net_cidr_nth(b, 1, &ip));
    assert_int_equal(ip, 0x0a2a0101u);
    assert_true(drv_net_cidr_nth(b, 255, &ip));
    assert_false(drv_net_cidr_nth(b, 256, &ip));
    assert_true(drv_net_cidr_nth((drv_net_cidr_t){0, 0}, 0xffffffffu, &ip));
    assert_false(drv_net_cidr_nth((drv_net_cidr_t){0, 33}, 0, &ip));

    assert_int_equal(drv_net_prefix_mask(0), 0);
    assert_int_equal(drv_net_prefix_mask(1), 0x80000000u);
    assert_int_equal(drv_net_prefix_mask(24), 0xffffff00u);
    assert_int_equal(drv_net_prefix_mask(32), 0xffffffffu);
    assert_int_equal(drv_net_prefix_mask(40), 0xffffffffu);
    assert_true(drv_net_cidr_covers(a, b));
    assert_true(drv_net_cidr_covers(a, a));
    assert_false(drv_net_cidr_covers(b, a)); /* inside a, but larger than b */
    assert_false(drv_net_cidr_covers(a, d));
    assert_true(drv_net_cidr_covers((drv_net_cidr_t){0, 0}, d));
}

static void test_valid(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *net = valid();
    drv_netstate_t ns;
    if (drv_netstate_parse(net, "pi-1", &ns, &err) != DRV_OK)
        fail_msg("%s", drv_error_msg(&err));
    cJSON_Delete(net); /* the result owns copies of what it keeps */
    assert_true(ns.present);
    assert_string_equal(ns.node, "pi-1");
    assert_int_equal(ns.pod_cidr.addr, 0x0a2a0100u);
    assert_int_equal(ns.pod_cidr.prefix, 24);
    assert_int_equal(ns.cluster_cidr.prefix, 16);
    assert_int_equal(ns.service_cidr.addr, 0x0a2b0000u);
    assert_string_equal(ns.cluster_domain, "cluster.local");
    assert_int_equal(ns.listen_port, 51820);
    assert_int_equal(ns.mtu, 1380);
    assert_int_equal(ns.keepalive_s, 25);

    assert_int_equal(ns.npeers, 3);
    assert_string_equal(ns.peers[0].node, "pi-2");
    assert_string_equal(ns.peers[0].public_key, KEY1);
    assert_string_equal(ns.peers[0].endpoint, "192.168.1.20:51820");
    assert_true(ns.peers[0].relay);
    assert_string_equal(ns.peers[1].node, "pi-3");
    assert_string_equal(ns.peers[1].endpoint, "");
    assert_string_equal(ns.peers[1].via, "pi-2");
    assert_int_equal(ns.peers[1].pod_cidr.addr, 0x0a2a0300u);
    assert_string_equal(ns.peers[2].endpoint, "[fd00::4]:51821");
    assert_false(ns.peers[2].relay);

    assert_int_equal(ns.nservices, 3);
    const drv_net_service_t *web = &ns.services[0];
    assert_string_equal(web->ns, "default");
    assert_string_equal(web->name, "web");
    assert_int_equal(web->type, DRV_NET_SVC_CLUSTER_IP);
    assert_false(web->headless);
    assert_int_equal(web->cluster_ip, 0x0a2b000cu);
    assert_true(web->affinity_client_ip);
    assert_int_equal(web->affinity_timeout_s, 600);
    assert_true(web->internal_local);
    assert_false(web->external_local);
    assert_int_equal(web->nports, 2);
    assert_string_equal(web->ports[1].name, "dns");
    assert_int_equal(web->ports[1].protocol, IPPROTO_UDP);
    assert_int_equal(web->ports[1].port, 53);
    assert_int_equal(web->nendpoints, 1);
    assert_int_equal(web->endpoints[0].ip, 0x0a2a0207u);
    assert_string_equal(web->endpoints[0].pod, "web-abc");
    assert_true(web->endpoints[0].ready);
    assert_int_equal(web->endpoints[0].target_ports[0], 8080);
    assert_int_equal(web->endpoints[0].target_ports[1], 0);

    const drv_net_service_t *db = drv_netstate_service(&ns, "default", "db");
    assert_ptr_equal(db, &ns.services[1]);
    assert_true(db->headless);
    assert_int_equal(db->cluster_ip, 0);
    assert_false(db->affinity_client_ip);
    assert_int_equal(db->affinity_timeout_s, 10800);
    assert_int_equal(db->ports[0].protocol, IPPROTO_TCP);
    assert_string_equal(db->endpoints[0].hostname, "db-0");
    assert_false(db->endpoints[0].ready);
    assert_false(db->endpoints[0].serving); /* serving follows ready when absent */

    const drv_net_service_t *front = drv_netstate_service(&ns, "shop", "front");
    assert_non_null(front);
    assert_int_equal(front->type, DRV_NET_SVC_NODE_PORT);
    assert_true(front->external_local);
    assert_int_equal(front->ports[0].node_port, 30080);
    assert_int_equal(front->nendpoints, 0);
    assert_null(drv_netstate_service(&ns, "shop", "web"));

    assert_int_equal(ns.npods, 2);
    assert_string_equal(ns.pods[0].name, "web-abc");
    assert_string_equal(cJSON_GetObjectItem(ns.pods[0].labels, "app")->valuestring, "web");
    assert_int_equal(cJSON_GetArraySize(ns.pods[0].ports), 1);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(ns.pods[0].ports, 0), "containerPort")->valueint,
        8080);
    assert_non_null(ns.pods[1].labels); /* never NULL */
    assert_non_null(ns.pods[1].ports);
    assert_int_equal(cJSON_GetArraySize(ns.pods[1].ports), 0);

    assert_int_equal(ns.nnamespaces, 2);
    assert_string_equal(ns.namespaces[1].name, "shop");
    assert_string_equal(
        cJSON_GetObjectItem(ns.namespaces[1].labels, "kubernetes.io/metadata.name")->valuestring,
        "shop");
    assert_string_equal(cJSON_GetObjectItem(ns.namespaces[1].labels, "team")->valuestring, "a");

    assert_int_equal(ns.npolicies, 1);
    assert_string_equal(ns.policies[0].ns, "default");
    assert_string_equal(ns.policies[0].name, "db-only-web");
    assert_non_null(ns.policies[0].object);
    drv_netstate_free(&ns);
    assert_int_equal(ns.npeers, 0);
}

static void test_absent(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_netstate_t ns;
    assert_int_equal(drv_netstate_parse(NULL, "pi-1", &ns, &err), DRV_OK);
    assert_false(ns.present);
    assert_int_equal(ns.npeers, 0);
    drv_netstate_free(&ns);
    cJSON *null = cJSON_CreateNull();
    assert_int_equal(drv_netstate_parse(null, "pi-1", &ns, &err), DRV_OK);
    assert_false(ns.present);
    cJSON_Delete(null);

    /* Only the three CIDRs are required; the rest takes its default. */
    cJSON *min = cJSON_Parse("{\"podCIDR\":\"10.42.1.0/24\",\"clusterCIDR\":\"10.42.0.0/16\","
                             "\"serviceCIDR\":\"10.43.0.0/16\"}");
    assert_int_equal(drv_netstate_parse(min, "pi-1", &ns, &err), DRV_OK);
    assert_true(ns.present);
    assert_int_equal(ns.listen_port, DRV_NET_DEFAULT_PORT);
    assert_int_equal(ns.mtu, DRV_NET_DEFAULT_MTU);
    assert_int_equal(ns.keepalive_s, 0);
    assert_string_equal(ns.cluster_domain, "cluster.local");
    drv_netstate_free(&ns);
    cJSON_Delete(min);

    cJSON *arr = cJSON_CreateArray();
    expect_bad(arr, "network: must be an object", NULL);
}

static void test_bad_top(void **state)
{
    (void)state;
    cJSON *n = valid();
    set_str(n, "podCIDR", "10.42.1.0/33");
    expect_bad(n, "network.podCIDR", "10.42.1.0/33");
    n = valid();
    set_str(n, "podCIDR", "10.42.1.5/24");
    expect_bad(n, "network.podCIDR", "host bits");
    n = valid();
    set_str(n, "podCIDR", "10.44.1.0/24");
    expect_bad(n, "network.podCIDR: 10.44.1.0/24 is outside network.clusterCIDR", NULL);
    n = valid();
    cJSON_DeleteItemFromObject(n, "clusterCIDR");
    expect_bad(n, "network.clusterCIDR: required", NULL);
    n = valid();
    set_str(n, "clusterCIDR", "0.0.0.0/0");
    expect_bad(n, "network.clusterCIDR", "/8 or longer");
    n = valid();
    set_str(n, "clusterCIDR", "127.0.0.0/8");
    set_str(n, "podCIDR", "127.0.1.0/24");
    expect_bad(n, "network.clusterCIDR", "reserved");
    n = valid();
    set_str(n, "serviceCIDR", "10.42.128.0/17");
    expect_bad(n, "network.serviceCIDR", "overlaps network.clusterCIDR");
    n = valid();
    set_num(n, "listenPort", 0);
    expect_bad(n, "network.listenPort", NULL);
    n = valid();
    set_num(n, "mtu", 1e300);
    expect_bad(n, "network.mtu", NULL);
    n = valid();
    set_str(n, "clusterDomain", "Cluster..local");
    expect_bad(n, "network.clusterDomain", NULL);
    n = valid();
    set_str(n, "peers", "x");
    expect_bad(n, "network.peers", "array");
}

static void test_bad_peers(void **state)
{
    (void)state;
    cJSON *n = valid();
    set_str(elem(n, "peers", 2), "podCIDR", "10.42.2.128/25");
    expect_bad(n, "network.peers[2].podCIDR: 10.42.2.128/25 overlaps network.peers[0].podCIDR",
               NULL);
    n = valid();
    set_str(elem(n, "peers", 1), "podCIDR", "10.42.1.0/24");
    expect_bad(n, "network.peers[1].podCIDR: 10.42.1.0/24 overlaps network.podCIDR", NULL);
    n = valid();
    set_str(elem(n, "peers", 0), "podCIDR", "10.42.0.0/16");
    expect_bad(n, "network.peers[0].podCIDR", "overlaps");
    n = valid();
    set_str(elem(n, "peers", 1), "podCIDR", "10.99.3.0/24");
    expect_bad(n, "network.peers[1].podCIDR: 10.99.3.0/24 is outside network.clusterCIDR", NULL);
    n = valid();
    set_str(elem(n, "peers", 1), "podCIDR", "10.42.3.0/33");
    expect_bad(n, "network.peers[1].podCIDR", "prefix length");
    n = valid();
    set_str(elem(n, "peers", 1), "podCIDR", "10.42.3.5/24");
    expect_bad(n, "network.peers[1].podCIDR", "host bits");
    n = valid();
    /* 31 bytes */
    set_str(elem(n, "peers", 1), "publicKey", "MVvPsisfzU83epkSyfQMVlFE74SGKgyhX/dhABsWTA==");
    expect_bad(n, "network.peers[1].publicKey", "32 bytes");
    n = valid();
    set_str(elem(n, "peers", 1), "publicKey", "MVvPsisfzU83epkSyfQMVlFE74SGKgyhX/dhABsW");
    expect_bad(n, "network.peers[1].publicKey", NULL);
    n = valid();
    set_str(elem(n, "peers", 1), "publicKey", "MVvPsisfzU83epkSyfQMVlFE74SGKgyhX/dhABs!TAA=");
    expect_bad(n, "network.peers[1].publicKey", NULL);
    n = valid();
    set_str(elem(n, "peers", 2), "node", "pi-2");
    expect_bad(n, "network.peers[2].node: \"pi-2\" is also network.peers[0]", NULL);
    n = valid();
    set_str(elem(n, "peers", 2), "node", "pi-1");
    expect_bad(n, "network.peers[2].node: \"pi-1\" is this node", NULL);
    n = valid();
    set_str(elem(n, "peers", 2), "node", "Pi_4");
    expect_bad(n, "network.peers[2].node", NULL);
    n = valid();
    set_str(elem(n, "peers", 2), "via", "pi-3");
    expect_bad(n, "network.peers[2].via: \"pi-3\" (network.peers[1]) is not a relay", NULL);
    n = valid();
    set_str(elem(n, "peers", 2), "via", "pi-9");
    expect_bad(n, "network.peers[2].via: \"pi-9\" names no peer", NULL);
    n = valid();
    set_str(elem(n, "peers", 0), "endpoint", "192.168.1.20");
    expect_bad(n, "network.peers[0].endpoint", "host:port");
    n = valid();
    set_str(elem(n, "peers", 0), "endpoint", "192.168.1.20:0");
    expect_bad(n, "network.peers[0].endpoint", NULL);
    n = valid();
    set_str(elem(n, "peers", 0), "endpoint", "fd00::4:51820");
    expect_bad(n, "network.peers[0].endpoint", NULL);
    n = valid();
    set_str(elem(n, "peers", 0), "endpoint", "example.com:51820");
    expect_bad(n, "network.peers[0].endpoint", NULL);
    n = valid();
    set_str(elem(n, "peers", 0), "relay", "yes");
    expect_bad(n, "network.peers[0].relay", NULL);
    n = valid();
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(n, "peers"), 1, cJSON_CreateString("pi-3"));
    expect_bad(n, "network.peers[1]: must be an object", NULL);
}

static void test_too_many(void **state)
{
    (void)state;
    cJSON *n = valid();
    cJSON *peers = cJSON_GetObjectItem(n, "peers");
    for (int i = 0; i < DRV_NET_PEERS_MAX; i++)
        cJSON_AddItemToArray(peers, cJSON_Duplicate(peers->child, true));
    expect_bad(n, "network.peers", "more than the 4096 allowed");
    n = valid();
    cJSON *ports = cJSON_GetObjectItem(elem(n, "services", 0), "ports");
    for (int i = 0; i < DRV_NET_PORTS_MAX; i++)
        cJSON_AddItemToArray(ports, cJSON_CreateObject());
    expect_bad(n, "network.services[0].ports", "more than the 100 allowed");
}

static void test_bad_services(void **state)
{
    (void)state;
    cJSON *n = valid();
    set_str(elem(n, "services", 0), "clusterIP", "10.44.0.12");
    expect_bad(n, "network.services[0].clusterIP: 10.44.0.12 is outside network.serviceCIDR", NULL);
    n = valid();
    set_str(elem(n, "services", 2), "clusterIP", "10.43.0.12");
    expect_bad(n, "network.services[2].clusterIP: 10.43.0.12 is also network.services[0]", NULL);
    n = valid();
    set_str(elem(n, "services", 0), "clusterIP", "10.43.0.012");
    expect_bad(n, "network.services[0].clusterIP", "IPv4");
    n = valid();
    cJSON *ep = elem(elem(n, "services", 0), "endpoints", 0);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(ep, "targetPorts"), 1);
    expect_bad(n, "network.services[0].endpoints[0].targetPorts",
               "1 given, want one per Service port (2)");
    n = valid();
    ep = elem(elem(n, "services", 0), "endpoints", 0);
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(ep, "targetPorts"), 0, cJSON_CreateNumber(70000));
    expect_bad(n, "network.services[0].endpoints[0].targetPorts[0]", NULL);
    n = valid();
    set_str(elem(elem(n, "services", 0), "endpoints", 0), "ip", "192.168.1.9");
    expect_bad(n, "network.services[0].endpoints[0].ip", "outside network.clusterCIDR");
    n = valid();
    set_num(elem(elem(n, "services", 0), "ports", 1), "port", 0);
    expect_bad(n, "network.services[0].ports[1].port", NULL);
    n = valid();
    set_num(elem(elem(n, "services", 0), "ports", 1), "port", 80.5);
    expect_bad(n, "network.services[0].ports[1].port", NULL);
    n = valid();
    cJSON *p1 = elem(elem(n, "services", 0), "ports", 1);
    set_num(p1, "port", 80);
    set_str(p1, "protocol", "TCP");
    expect_bad(n, "network.services[0].ports[1].port: 80/TCP is also", NULL);
    n = valid();
    set_str(elem(elem(n, "services", 0), "ports", 1), "name", "http");
    expect_bad(n, "network.services[0].ports[1].name", "also");
    n = valid();
    set_str(elem(elem(n, "services", 0), "ports", 1), "name", "");
    expect_bad(n, "network.services[0].ports[1].name", "required");
    n = valid();
    set_str(elem(elem(n, "services", 0), "ports", 1), "protocol", "ICMP");
    expect_bad(n, "network.services[0].ports[1].protocol", NULL);
    n = valid();
    set_num(elem(elem(n, "services", 0), "ports", 0), "nodePort", 30001);
    expect_bad(n, "network.services[0].ports[0].nodePort", "ClusterIP");
    n = valid();
    set_num(elem(elem(n, "services", 2), "ports", 0), "nodePort", 0);
    expect_bad(n, "network.services[2].ports[0].nodePort", "required");
    n = valid();
    cJSON *dup = cJSON_Duplicate(elem(n, "services", 2), true);
    set_str(dup, "name", "front2");
    set_str(dup, "clusterIP", "10.43.1.2");
    cJSON_AddItemToArray(cJSON_GetObjectItem(n, "services"), dup);
    expect_bad(n, "network.services[3].ports[0].nodePort: 30080/TCP is also", NULL);
    n = valid();
    set_str(elem(n, "services", 2), "clusterIP", "None");
    expect_bad(n, "network.services[2].clusterIP", "headless");
    n = valid();
    set_str(elem(n, "services", 0), "type", "ExternalName");
    expect_bad(n, "network.services[0].type", NULL);
    n = valid();
    set_str(elem(n, "services", 0), "sessionAffinity", "Sticky");
    expect_bad(n, "network.services[0].sessionAffinity", NULL);
    n = valid();
    set_str(elem(n, "services", 0), "internalTrafficPolicy", "Node");
    expect_bad(n, "network.services[0].internalTrafficPolicy", NULL);
    n = valid();
    set_str(elem(n, "services", 0), "name", "9web");
    expect_bad(n, "network.services[0].name", NULL);
    n = valid();
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    set_str(elem(n, "services", 0), "namespace", longname);
    expect_bad(n, "network.services[0].namespace", "no more than 63");
}

static void test_bad_pods_policies(void **state)
{
    (void)state;
    cJSON *n = valid();
    set_str(elem(n, "pods", 1), "ip", "10.50.0.1");
    expect_bad(n, "network.pods[1].ip", "outside");
    n = valid();
    cJSON *labels = cJSON_GetObjectItem(elem(n, "pods", 0), "labels");
    cJSON_AddNumberToObject(labels, "tier", 1);
    expect_bad(n, "network.pods[0].labels", "tier");
    n = valid();
    labels = cJSON_GetObjectItem(elem(n, "pods", 0), "labels");
    cJSON_AddStringToObject(labels, "bad key!", "x");
    expect_bad(n, "network.pods[0].labels", "bad key!");
    n = valid();
    set_num(elem(elem(n, "pods", 0), "ports", 0), "containerPort", 0);
    expect_bad(n, "network.pods[0].ports[0].containerPort", NULL);
    n = valid();
    set_str(elem(elem(n, "pods", 0), "ports", 0), "name", "HTTP_");
    expect_bad(n, "network.pods[0].ports[0].name", NULL);
    n = valid();
    set_str(elem(n, "namespaces", 1), "name", "default");
    expect_bad(n, "network.namespaces[1].name", "also");
    n = valid();
    set_str(elem(n, "networkPolicies", 0), "kind", "Pod");
    expect_bad(n, "network.networkPolicies[0].kind", "NetworkPolicy");
    n = valid();
    cJSON *meta = cJSON_GetObjectItem(elem(n, "networkPolicies", 0), "metadata");
    set_str(meta, "name", "Bad_Name");
    expect_bad(n, "network.networkPolicies[0]", "metadata.name");
}

/* The protocol carries the section: built in, parsed back out as the same object. */
static void test_protocol(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *net = valid();
    cJSON *d = drv_proto_desired_build_net("pi-1", 7, NULL, NULL, NULL, net, &err);
    assert_non_null(d);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(drv_proto_encode(d, DRV_PROTO_DESIRED, &text, &len, &err), DRV_OK);
    drv_proto_desired_t pd;
    assert_int_equal(drv_proto_desired_parse(text, len, "pi-1", &pd, &err), DRV_OK);
    assert_non_null(pd.network);
    assert_true(cJSON_Compare(pd.network, net, true));
    drv_netstate_t ns;
    assert_int_equal(drv_netstate_parse(pd.network, pd.node, &ns, &err), DRV_OK);
    assert_int_equal(ns.npeers, 3);
    drv_netstate_free(&ns);
    drv_proto_desired_free(&pd);
    free(text);
    cJSON_Delete(d);

    /* Without one: absent, and the old builder makes none. */
    d = drv_proto_desired_build("pi-1", 7, NULL, NULL, NULL, &err);
    assert_null(cJSON_GetObjectItem(d, "network"));
    assert_int_equal(drv_proto_encode(d, DRV_PROTO_DESIRED, &text, &len, &err), DRV_OK);
    assert_int_equal(drv_proto_desired_parse(text, len, "pi-1", &pd, &err), DRV_OK);
    assert_null(pd.network);
    drv_proto_desired_free(&pd);
    free(text);
    cJSON_Delete(d);

    assert_null(drv_proto_desired_build_net("pi-1", 7, NULL, NULL, NULL, net->child, &err));
    assert_non_null(strstr(drv_error_msg(&err), "network: must be an object"));
    cJSON_Delete(net);
    const char *bad =
        "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeDesiredState\",\"node\":\"pi-1\","
        "\"generation\":1,\"network\":[]}";
    assert_int_equal(drv_proto_desired_parse(bad, strlen(bad), "pi-1", &pd, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "desired state: network: must be an object"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),    cmocka_unit_test(test_valid),
        cmocka_unit_test(test_absent),       cmocka_unit_test(test_bad_top),
        cmocka_unit_test(test_bad_peers),    cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_bad_services), cmocka_unit_test(test_bad_pods_policies),
        cmocka_unit_test(test_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
