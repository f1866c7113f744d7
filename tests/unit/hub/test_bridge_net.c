/* The network section of the hub bridge's desired state (hub/bridge/network.c) over a real
 * store: peers from Nodes' keys and podCIDRs, endpoints behind NAT and through a relay,
 * Services with endpoints from EndpointSlices, which changes republish every node and which
 * none; and the agent's key report taken onto its Node (hub/bridge/bridge.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/bridge.h"
#include "bridge/bridge_int.h"
#include "drover/json.h"
#include "drover/netstate.h"
#include "drover/protocol.h"
#include "store/store.h"

#define KEY1 "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY2 "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
#define KEY3 "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="

struct fx {
    char dir[64];
    char path[128];
    drv_hstore_t *s;
    bdesired_t d;
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-bridgenet-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_open(f->path, &f->s, &err) != DRV_OK) {
        fprintf(stderr, "open: %s\n", drv_error_msg(&err));
        free(f);
        return -1;
    }
    bdesired_init(&f->d);
    f->d.clear_secrets = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bdesired_free(&f->d);
    drv_hstore_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Stores an object as given (Nodes carry spec.podCIDR, which H2's controller writes). */
static void create_json(struct fx *f, drv_kind_t kind, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    if (!o)
        fail_msg("bad test JSON: %.200s", text);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_create(f->s, kind, o, &err) != DRV_OK)
        fail_msg("create: %s", drv_error_msg(&err));
    cJSON_Delete(o);
}

/* A Node; cidr, key, ann_extra (more annotations, ",\"k\":\"v\"" or ""), label_extra and
 * addresses (the status.addresses array's members) as given; NULL leaves one out. */
static void mknode(struct fx *f, const char *name, const char *cidr, const char *key,
                   const char *ann_extra, const char *label_extra, const char *addresses)
{
    char buf[2048];
    snprintf(
        buf, sizeof(buf),
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
        "\"labels\":{\"kubernetes.io/hostname\":\"%s\"%s},\"annotations\":{\"x\":\"y\"%s%s%s%s}},"
        "\"spec\":{%s%s%s},\"status\":{\"addresses\":[%s]}}",
        name, name, label_extra ? label_extra : "", key ? ",\"" BNET_ANN_KEY "\":\"" : "",
        key ? key : "", key ? "\"" : "", ann_extra ? ann_extra : "", cidr ? "\"podCIDR\":\"" : "",
        cidr ? cidr : "", cidr ? "\"" : "", addresses ? addresses : "");
    create_json(f, DRV_KIND_NODE, buf);
}

static void load(struct fx *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (bdesired_load(&f->d, f->s, &err) != DRV_OK)
        fail_msg("load: %s", drv_error_msg(&err));
}

static void follow(struct fx *f)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (bdesired_follow(&f->d, f->s, &err) != DRV_OK)
        fail_msg("follow: %s", drv_error_msg(&err));
}

/* Builds every dirty node's document as the bridge's tick does, and counts those that would
 * be published (content changed). */
static int publish_dirty(struct fx *f)
{
    int published = 0;
    void *v;
    for (size_t it = 0; drv_map_next(&f->d.nodes, &it, NULL, &v);) {
        bnode_t *n = v;
        if (!n->dirty)
            continue;
        n->dirty = false;
        f->d.ndirty--;
        bool unchanged = false;
        drv_digest_t sum;
        size_t len = 0;
        drv_error_t err = DRV_ERROR_INIT;
        char *p = bdesired_build(&f->d, n, 7, &sum, &len, &unchanged, &err);
        if (unchanged)
            continue;
        if (!p)
            fail_msg("build %s: %s", n->name, drv_error_msg(&err));
        free(p);
        n->published = true;
        n->sum = sum;
        published++;
    }
    assert_int_equal(f->d.ndirty, 0);
    return published;
}

/* node's document's network section (a new tree; NULL when it has none). */
static cJSON *network_of(struct fx *f, const char *node)
{
    bnode_t *n = bdesired_node(&f->d, node);
    assert_non_null(n);
    drv_digest_t sum;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    char *p = bdesired_build(&f->d, n, 7, &sum, &len, NULL, &err);
    if (!p)
        fail_msg("build %s: %s", node, drv_error_msg(&err));
    drv_proto_desired_t d;
    if (drv_proto_desired_parse(p, len, node, &d, &err) != DRV_OK)
        fail_msg("parse %s: %s", node, drv_error_msg(&err));
    free(p);
    cJSON *net = cJSON_DetachItemFromObjectCaseSensitive(d.doc, "network");
    drv_proto_desired_free(&d);
    /* What the agent does with it: the section passes its parser whole. */
    drv_netstate_t ns;
    if (drv_netstate_parse(net, node, &ns, &err) != DRV_OK)
        fail_msg("netstate of %s: %s", node, drv_error_msg(&err));
    assert_int_equal(ns.present, net != NULL);
    drv_netstate_free(&ns);
    return net;
}

static const cJSON *peer(const cJSON *net, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, drv_json_get(net, "peers"))
    {
        if (!strcmp(drv_json_str_or(p, "node", ""), name))
            return p;
    }
    return NULL;
}

#define ADDR(ip) "{\"type\":\"InternalIP\",\"address\":\"" ip "\"}"

static void test_two_nodes_are_peers(void **state)
{
    struct fx *f = *state;
    mknode(f, "pi-1", "10.42.1.0/24", KEY1, NULL, NULL, ADDR("192.168.1.10"));
    mknode(f, "pi-2", "10.42.2.0/24", KEY2, ",\"" BNET_ANN_PORT "\":\"51821\"", NULL,
           ADDR("192.168.1.20"));
    mknode(f, "pi-3", NULL, NULL, NULL, NULL, ADDR("192.168.1.30")); /* no podCIDR yet */
    load(f);
    cJSON *n1 = network_of(f, "pi-1"), *n2 = network_of(f, "pi-2");
    assert_non_null(n1);
    assert_non_null(n2);
    assert_string_equal(drv_json_str(n1, "podCIDR"), "10.42.1.0/24");
    assert_string_equal(drv_json_str(n1, "clusterCIDR"), "10.42.0.0/16");
    assert_string_equal(drv_json_str(n1, "serviceCIDR"), "10.43.0.0/16");
    assert_string_equal(drv_json_str(n1, "clusterDomain"), "cluster.local");
    assert_int_equal(drv_json_int_or(n2, "listenPort", 0), 51821);
    assert_int_equal(drv_json_array_len(drv_json_get(n1, "peers")), 1);
    assert_int_equal(drv_json_array_len(drv_json_get(n2, "peers")), 1);
    const cJSON *p = peer(n1, "pi-2");
    assert_non_null(p);
    assert_string_equal(drv_json_str(p, "publicKey"), KEY2);
    assert_string_equal(drv_json_str(p, "podCIDR"), "10.42.2.0/24");
    /* No broker plugin, no observed address: its first InternalIP and its port. */
    assert_string_equal(drv_json_str(p, "endpoint"), "192.168.1.20:51821");
    assert_string_equal(drv_json_str(p, "via"), "");
    p = peer(n2, "pi-1");
    assert_non_null(p);
    assert_string_equal(drv_json_str(p, "publicKey"), KEY1);
    assert_string_equal(drv_json_str(p, "endpoint"), "192.168.1.10:51820");
    assert_null(peer(n1, "pi-1"));
    assert_null(network_of(f, "pi-3")); /* keeps its local subnet */
    cJSON_Delete(n1);
    cJSON_Delete(n2);
}

/* Overlapping podCIDRs (a user's) leave both nodes out of everyone's peers; a key-less node
 * changing its own podCIDR republishes only itself. */
static void test_overlap_and_keyless(void **state)
{
    struct fx *f = *state;
    mknode(f, "c1", "10.42.5.0/24", KEY1, NULL, NULL, ADDR("192.168.1.1"));
    mknode(f, "c2", "10.42.4.0/23", KEY2, NULL, NULL, ADDR("192.168.1.2"));
    mknode(f, "ok", "10.42.9.0/24", KEY3, NULL, NULL, ADDR("192.168.1.3"));
    mknode(f, "nokey", NULL, NULL, NULL, NULL, ADDR("192.168.1.4"));
    load(f);
    assert_int_equal(publish_dirty(f), 4);
    cJSON *net = network_of(f, "ok");
    assert_int_equal(drv_json_array_len(drv_json_get(net, "peers")), 0);
    cJSON_Delete(net);
    cJSON *o = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_NODE, NULL, "nokey", &o, &err), DRV_OK);
    cJSON_AddStringToObject(drv_json_get(o, "spec"), "podCIDR", "10.42.7.0/24");
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_NODE, o, &err), DRV_OK);
    cJSON_Delete(o);
    follow(f);
    assert_int_equal(f->d.ndirty, 1);
    assert_true(bdesired_node(&f->d, "nokey")->dirty);
    net = network_of(f, "nokey");
    assert_string_equal(drv_json_str(net, "podCIDR"), "10.42.7.0/24");
    assert_int_equal(drv_json_array_len(drv_json_get(net, "peers")), 1); /* "ok" only */
    cJSON_Delete(net);
}

static void test_service_and_slice(void **state)
{
    struct fx *f = *state;
    mknode(f, "pi-1", "10.42.1.0/24", KEY1, NULL, NULL, ADDR("192.168.1.10"));
    load(f);
    assert_int_equal(publish_dirty(f), 1);
    create_json(f, DRV_KIND_SERVICE,
                "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
                "\"namespace\":\"default\"},\"spec\":{\"clusterIP\":\"10.43.0.12\",\"selector\":"
                "{\"app\":\"web\"},\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":"
                "\"http\"},{\"name\":\"metrics\",\"port\":9090,\"protocol\":\"TCP\"}]}}");
    follow(f);
    assert_int_equal(publish_dirty(f), 1);
    create_json(f, DRV_KIND_ENDPOINTSLICE,
                "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
                "{\"name\":\"web-x1\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/"
                "service-name\":\"web\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
                "[\"10.42.2.7\"],\"conditions\":{\"ready\":true},\"nodeName\":\"pi-2\","
                "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"web-abc\",\"namespace\":\"default\"}},"
                "{\"addresses\":[\"10.42.1.9\"],\"conditions\":{\"ready\":false,\"terminating\":"
                "true},\"nodeName\":\"pi-1\"}],\"ports\":[{\"name\":\"http\",\"port\":8080,"
                "\"protocol\":\"TCP\"}]}");
    follow(f);
    assert_int_equal(publish_dirty(f), 1);
    cJSON *net = network_of(f, "pi-1");
    const cJSON *svc = cJSON_GetArrayItem(drv_json_get(net, "services"), 0);
    assert_non_null(svc);
    assert_string_equal(drv_json_str(svc, "namespace"), "default");
    assert_string_equal(drv_json_str(svc, "name"), "web");
    assert_string_equal(drv_json_str(svc, "type"), "ClusterIP");
    assert_string_equal(drv_json_str(svc, "clusterIP"), "10.43.0.12");
    assert_int_equal(drv_json_int_or(svc, "affinityTimeoutSeconds", 0), 10800);
    assert_int_equal(drv_json_array_len(drv_json_get(svc, "ports")), 2);
    const cJSON *eps = drv_json_get(svc, "endpoints");
    assert_int_equal(drv_json_array_len(eps), 2);
    const cJSON *e0 = cJSON_GetArrayItem(eps, 0), *e1 = cJSON_GetArrayItem(eps, 1);
    assert_string_equal(drv_json_str(e0, "ip"), "10.42.2.7");
    assert_string_equal(drv_json_str(e0, "node"), "pi-2");
    assert_string_equal(drv_json_str(e0, "pod"), "web-abc");
    assert_true(drv_json_true(e0, "ready"));
    assert_true(drv_json_true(e0, "serving")); /* unset: as ready */
    assert_false(drv_json_true(e0, "terminating"));
    const cJSON *tp = drv_json_get(e0, "targetPorts");
    assert_int_equal(drv_json_array_len(tp), 2);
    assert_int_equal(cJSON_GetArrayItem(tp, 0)->valueint, 8080); /* http, by name */
    assert_int_equal(cJSON_GetArrayItem(tp, 1)->valueint, 0);    /* metrics: not in the slice */
    assert_false(drv_json_true(e1, "ready"));
    assert_true(drv_json_true(e1, "terminating"));
    assert_string_equal(drv_json_str(e1, "pod"), "");
    cJSON_Delete(net);
}

static void set_pod_status(struct fx *f, const char *name, const char *ip, int restarts)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"phase\":\"Running\",\"podIP\":\"%s\",\"containerStatuses\":[{\"name\":\"c\","
             "\"restartCount\":%d,\"ready\":true}]}",
             ip, restarts);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_hstore_update_status(f->s, DRV_KIND_POD, "default", name, cJSON_Parse(buf), NULL,
                                 &err) != DRV_OK)
        fail_msg("status: %s", drv_error_msg(&err));
}

static void test_pod_changes(void **state)
{
    struct fx *f = *state;
    mknode(f, "pi-1", "10.42.1.0/24", KEY1, NULL, NULL, ADDR("192.168.1.10"));
    mknode(f, "pi-2", "10.42.2.0/24", KEY2, NULL, NULL, ADDR("192.168.1.20"));
    mknode(f, "pi-3", "10.42.3.0/24", KEY3, NULL, NULL, ADDR("192.168.1.30"));
    create_json(f, DRV_KIND_POD,
                "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-abc\","
                "\"namespace\":\"default\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":"
                "\"pi-2\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"ports\":[{"
                "\"name\":\"http\",\"containerPort\":8080}]}]}}");
    set_pod_status(f, "web-abc", "10.42.2.7", 0);
    load(f);
    assert_int_equal(publish_dirty(f), 3);
    /* Without a NetworkPolicy the pods' addresses stay out (nothing on a device needs them):
     * a new IP publishes nothing. */
    cJSON *net = network_of(f, "pi-1");
    assert_int_equal(cJSON_GetArraySize(drv_json_get(net, "pods")), 0);
    cJSON_Delete(net);
    set_pod_status(f, "web-abc", "10.42.2.6", 0);
    follow(f);
    assert_int_equal(f->d.ndirty, 0); /* not even built again: a burst's IPs cost no document */
    assert_int_equal(publish_dirty(f), 0);
    set_pod_status(f, "web-abc", "10.42.2.7", 0);
    follow(f);
    assert_int_equal(publish_dirty(f), 0);
    /* With one, every pod is there, for its peers. */
    create_json(f, DRV_KIND_NETWORKPOLICY,
                "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
                "\"metadata\":{\"name\":\"deny\",\"namespace\":\"default\"},\"spec\":{"
                "\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}}");
    follow(f);
    assert_int_equal(publish_dirty(f), 3);
    net = network_of(f, "pi-1");
    const cJSON *pod = cJSON_GetArrayItem(drv_json_get(net, "pods"), 0);
    assert_string_equal(drv_json_str(pod, "ip"), "10.42.2.7");
    assert_string_equal(drv_json_str(pod, "node"), "pi-2");
    assert_string_equal(drv_json_str(drv_json_get(pod, "labels"), "app"), "web");
    const cJSON *port = cJSON_GetArrayItem(drv_json_get(pod, "ports"), 0);
    assert_string_equal(drv_json_str(port, "name"), "http");
    assert_int_equal(drv_json_int_or(port, "containerPort", 0), 8080);
    cJSON_Delete(net);
    /* A restart changes nothing any node's network section says. */
    set_pod_status(f, "web-abc", "10.42.2.7", 1);
    follow(f);
    assert_int_equal(f->d.ndirty, 0);
    assert_int_equal(publish_dirty(f), 0);
    /* A new IP changes every node's. */
    set_pod_status(f, "web-abc", "10.42.2.8", 1);
    follow(f);
    assert_int_equal(f->d.ndirty, 3);
    assert_int_equal(publish_dirty(f), 3);
    /* Labels too (policies select by them). */
    cJSON *p = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_POD, "default", "web-abc", &p, &err), DRV_OK);
    cJSON *labels = drv_json_get(drv_json_get(p, "metadata"), "labels");
    cJSON_AddStringToObject(labels, "tier", "front");
    assert_int_equal(drv_hstore_update(f->s, DRV_KIND_POD, p, &err), DRV_OK);
    cJSON_Delete(p);
    follow(f);
    assert_int_equal(f->d.ndirty, 3);
    assert_int_equal(publish_dirty(f), 3);
}

static void test_nat(void **state)
{
    struct fx *f = *state;
    mknode(f, "pi-1", "10.42.1.0/24", KEY1, NULL, NULL, ADDR("192.168.1.10"));
    mknode(f, "pi-2", "10.42.2.0/24", KEY2, NULL, NULL, ADDR("192.168.1.20"));
    mknode(f, "pi-3", "10.42.3.0/24", KEY3, ",\"" BNET_ANN_ENDPOINT "\":\"198.51.100.7:4500\"",
           NULL, ADDR("10.0.0.3"));
    load(f);
    assert_int_equal(publish_dirty(f), 3);
    /* pi-1 connects from an address it does not have: a NAT between it and the hub. */
    bnet_observed(&f->d, bdesired_node(&f->d, "pi-1"), "203.0.113.5");
    assert_int_equal(f->d.ndirty, 3);
    /* Its peers' documents change, and its own: it is told it is behind a NAT. */
    assert_int_equal(publish_dirty(f), 3);
    cJSON *own = network_of(f, "pi-1");
    assert_true(drv_json_true(own, "behindNat"));
    cJSON_Delete(own);
    /* pi-2 from its own (IPv4-mapped, as a dual-stack listener reports it). */
    bnet_observed(&f->d, bdesired_node(&f->d, "pi-2"), "::ffff:192.168.1.20");
    cJSON *net = network_of(f, "pi-3");
    assert_string_equal(drv_json_str(peer(net, "pi-1"), "endpoint"), "");
    assert_string_equal(drv_json_str(peer(net, "pi-2"), "endpoint"), "192.168.1.20:51820");
    assert_string_equal(drv_json_str(peer(net, "pi-1"), "via"), "");
    cJSON_Delete(net);
    net = network_of(f, "pi-1");
    /* An admin's endpoint (a port forward) wins over what the hub saw. */
    assert_string_equal(drv_json_str(peer(net, "pi-3"), "endpoint"), "198.51.100.7:4500");
    cJSON_Delete(net);
    /* The same address again changes nothing. */
    publish_dirty(f);
    bnet_observed(&f->d, bdesired_node(&f->d, "pi-1"), "203.0.113.5");
    assert_int_equal(f->d.ndirty, 0);
}

static void test_relay(void **state)
{
    struct fx *f = *state;
    mknode(f, "a", "10.42.1.0/24", KEY1, ",\"" BNET_ANN_OBSERVED "\":\"203.0.113.1\"", NULL,
           ADDR("192.168.1.10"));
    mknode(f, "b", "10.42.2.0/24", KEY2, ",\"" BNET_ANN_OBSERVED "\":\"203.0.113.2\"", NULL,
           ADDR("192.168.7.20"));
    mknode(f, "r", "10.42.3.0/24", KEY3, ",\"" BNET_ANN_OBSERVED "\":\"198.51.100.9\"",
           ",\"" BNET_LABEL_RELAY "\":\"true\"",
           ADDR("10.0.0.9") ",{\"type\":\"ExternalIP\",\"address\":\"198.51.100.9\"}");
    load(f);
    cJSON *na = network_of(f, "a"), *nb = network_of(f, "b"), *nr = network_of(f, "r");
    assert_string_equal(drv_json_str(peer(na, "b"), "endpoint"), "");
    assert_string_equal(drv_json_str(peer(na, "b"), "via"), "r");
    assert_string_equal(drv_json_str(peer(nb, "a"), "via"), "r");
    assert_string_equal(drv_json_str(peer(na, "r"), "endpoint"), "198.51.100.9:51820");
    assert_true(drv_json_true(peer(na, "r"), "relay"));
    assert_string_equal(drv_json_str(peer(na, "r"), "via"), "");
    assert_false(drv_json_true(peer(na, "b"), "relay"));
    /* The relay reaches both directly (they keep their tunnels to it alive). */
    assert_string_equal(drv_json_str(peer(nr, "a"), "via"), "");
    assert_string_equal(drv_json_str(peer(nr, "b"), "via"), "");
    cJSON_Delete(na);
    cJSON_Delete(nb);
    cJSON_Delete(nr);
}

/* ---- the key report, through the bridge ---- */

static void report(drv_bridge_t *b, const char *node, const char *network)
{
    char ns[512];
    snprintf(ns, sizeof(ns), "{\"network\":%s}", network);
    cJSON *nst = cJSON_Parse(ns), *pods = cJSON_CreateArray();
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *msg = drv_proto_status_build(node, 1, nst, pods, &err);
    assert_non_null(msg);
    char *payload = NULL, topic[DRV_PROTO_TOPIC_MAX];
    size_t len = 0;
    assert_int_equal(drv_proto_encode(msg, DRV_PROTO_STATUS, &payload, &len, &err), DRV_OK);
    assert_int_equal(drv_proto_topic(topic, sizeof(topic), node, DRV_PROTO_STATUS, NULL, &err),
                     DRV_OK);
    drv_bridge_deliver(b, topic, payload, len);
    free(payload);
    cJSON_Delete(msg);
    cJSON_Delete(nst);
    cJSON_Delete(pods);
}

static const char *annotation(struct fx *f, const char *node, const char *key, char *out)
{
    cJSON *o = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_NODE, NULL, node, &o, NULL), DRV_OK);
    const char *v = drv_json_str(drv_json_get(drv_json_get(o, "metadata"), "annotations"), key);
    snprintf(out, 128, "%s", v ? v : "(none)");
    cJSON_Delete(o);
    return out;
}

static int count_events(struct fx *f, const char *reason, const char *needle)
{
    cJSON *items = NULL;
    assert_int_equal(drv_hstore_list(f->s, DRV_KIND_EVENT, NULL, NULL, &items, NULL, NULL), DRV_OK);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, items)
    {
        const char *r = drv_json_str(e, "reason"), *m = drv_json_str(e, "message");
        if (r && !strcmp(r, reason) && m && strstr(m, needle))
            n++;
    }
    cJSON_Delete(items);
    return n;
}

static void test_key_report(void **state)
{
    struct fx *f = *state;
    mknode(f, "pi-1", "10.42.1.0/24", NULL, NULL, NULL, ADDR("192.168.1.10"));
    drv_bridge_opts_t o = {.broker_url = "tcp://127.0.0.1:9", .store = f->s};
    drv_bridge_t *b = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_bridge_new(&o, &b, &err) != DRV_OK)
        fail_msg("bridge: %s", drv_error_msg(&err));
    char v[128];
    report(b, "pi-1", "{\"publicKey\":\"bm90LWEta2V5\",\"listenPort\":51820}");
    assert_string_equal(annotation(f, "pi-1", BNET_ANN_KEY, v), "(none)");
    assert_int_equal(count_events(f, "NetworkRefused", "nodeStatus.network.publicKey"), 1);
    /* The same bad report again: one event per change, not per report. */
    report(b, "pi-1", "{\"publicKey\":\"bm90LWEta2V5\",\"listenPort\":51820}");
    assert_int_equal(count_events(f, "NetworkRefused", "nodeStatus.network.publicKey"), 1);
    report(b, "pi-1", "{\"publicKey\":\"" KEY1 "\",\"listenPort\":70000}");
    assert_int_equal(count_events(f, "NetworkRefused", "nodeStatus.network.listenPort"), 1);
    assert_string_equal(annotation(f, "pi-1", BNET_ANN_KEY, v), "(none)");
    report(b, "pi-1",
           "{\"publicKey\":\"" KEY1 "\",\"listenPort\":51822,\"wireguard\":\"userspace\","
           "\"podCIDR\":\"10.42.9.0/24\"}");
    assert_string_equal(annotation(f, "pi-1", BNET_ANN_KEY, v), KEY1);
    assert_string_equal(annotation(f, "pi-1", BNET_ANN_PORT, v), "51822");
    /* A report never moves the hub's allocation. */
    cJSON *node = NULL;
    assert_int_equal(drv_hstore_get(f->s, DRV_KIND_NODE, NULL, "pi-1", &node, NULL), DRV_OK);
    assert_string_equal(drv_json_str_at(node, "spec.podCIDR"), "10.42.1.0/24");
    cJSON_Delete(node);
    /* The observed address lands on the Node, once. */
    drv_bridge_observed(b, "pi-1", "192.168.1.10");
    assert_string_equal(annotation(f, "pi-1", BNET_ANN_OBSERVED, v), "192.168.1.10");
    uint64_t rv = drv_hstore_rv(f->s);
    drv_bridge_observed(b, "pi-1", "192.168.1.10");
    assert_int_equal(drv_hstore_rv(f->s), rv);
    drv_bridge_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_nodes_are_peers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_and_keyless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_and_slice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_report, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
