/* The agent's hub link without a broker: which desired states are applied, ignored or
 * refused (and that the refusal names the field), the merge with static manifests, the status
 * report's contents, and which log a request means. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "link/link.h"

#define ASSERT_ERR(call, code, needle)                                                             \
    do {                                                                                           \
        drv_error_clear(&err);                                                                     \
        assert_int_equal((call), (code));                                                          \
        if (!strstr(drv_error_msg(&err), (needle)))                                                \
            fail_msg("error \"%s\" does not contain \"%s\"", drv_error_msg(&err), (needle));       \
    } while (0)

static char *doc(const char *node, unsigned gen, const char *pods, const char *cms)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeDesiredState\",\"node\":\"%s\","
             "\"generation\":%u,\"pods\":%s,\"configMaps\":%s,\"secrets\":[]}",
             node, gen, pods, cms ? cms : "[]");
    return buf;
}

#define POD(name, uid, node, image)                                                                \
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\",\"uid\":\"" uid   \
    "\"},\"spec\":{\"nodeName\":\"" node                                                           \
    "\",\"containers\":[{\"name\":\"main\",\"image\":\"" image "\"}]}}"

static void test_desired_accepted(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_link_desired_t d = {0};
    const char *cm = "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                     "\"cfg\"},\"data\":{\"a\":\"b\"}}]";
    char *text = doc("n1", 5, "[" POD("web", "uid-1", "n1", "busybox:1") "]", cm);
    assert_int_equal(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_OK);
    assert_false(d.stale);
    assert_int_equal(d.generation, 5);
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(d.desired, "pods");
    assert_int_equal(cJSON_GetArraySize(pods), 1);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pods->child, "metadata");
    /* The uid survives normalization (it names the pod's directory on the device). */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "uid")->valuestring, "uid-1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "namespace")->valuestring,
                        "default");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d.desired, "configMaps")),
                     1);
    drv_link_desired_free(&d);

    /* Objects without kind are taken as what their array holds. */
    text = doc("n1", 6,
               "[{\"metadata\":{\"name\":\"w\",\"uid\":\"u\"},\"spec\":{\"nodeName\":\"n1\","
               "\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}]",
               NULL);
    assert_int_equal(drv_link_desired_check(text, strlen(text), "n1", 5, &d, &err), DRV_OK);
    assert_false(d.stale);
    drv_link_desired_free(&d);
}

/* persistentVolumes: each a valid PV on this node, its phase kept; merged from the hub's. */
static void test_desired_volumes(void **state)
{
    (void)state;
#define PVDOC(node, phase, path)                                                                   \
    "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeDesiredState\",\"node\":\"n1\","                 \
    "\"generation\":9,\"pods\":[],\"configMaps\":[],\"secrets\":[],\"persistentVolumes\":[{"       \
    "\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pvc-1\"},"       \
    "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"            \
    "\"claimRef\":{\"namespace\":\"default\",\"name\":\"data\"},\"local\":{\"path\":\"" path       \
    "\"},\"nodeAffinity\":{\"required\":{\"nodeSelectorTerms\":[{\"matchExpressions\":[{"          \
    "\"key\":\"kubernetes.io/hostname\",\"operator\":\"In\",\"values\":[\"" node "\"]}]}]}}},"     \
    "\"status\":{\"phase\":\"" phase "\"}}]}"
    drv_error_t err = DRV_ERROR_INIT;
    drv_link_desired_t d = {0};
    const char *ok = PVDOC("n1", "Released", "/s/pvc-1_default_data");
    assert_int_equal(drv_link_desired_check(ok, strlen(ok), "n1", 0, &d, &err), DRV_OK);
    const cJSON *pvs = cJSON_GetObjectItemCaseSensitive(d.desired, "persistentVolumes");
    assert_int_equal(cJSON_GetArraySize(pvs), 1);
    assert_string_equal(drv_json_str_at(pvs->child, "status.phase"), "Released");
    assert_string_equal(drv_json_str_at(pvs->child, "spec.persistentVolumeReclaimPolicy"),
                        "Retain");
    cJSON *merged = drv_link_merge(NULL, d.desired);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(merged, "persistentVolumes")), 1);
    cJSON_Delete(merged);
    drv_link_desired_free(&d);
    const char *other = PVDOC("n2", "Bound", "/s/x");
    ASSERT_ERR(drv_link_desired_check(other, strlen(other), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "persistentVolumes[0].spec.nodeAffinity: the volume is not on this node");
    const char *phase = PVDOC("n1", "Gone", "/s/x");
    ASSERT_ERR(drv_link_desired_check(phase, strlen(phase), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "persistentVolumes[0].status.phase");
    const char *rel = PVDOC("n1", "Bound", "relative");
    ASSERT_ERR(drv_link_desired_check(rel, strlen(rel), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "persistentVolumes[0].spec.local.path: must be an absolute path");
}

/* A desired state of n1 with a network section listing one peer. */
static char *net_doc(unsigned gen, const char *peer, const char *cidr)
{
    static char text[8192];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"drover/v1\",\"kind\":\"NodeDesiredState\",\"node\":\"n1\","
             "\"generation\":%u,\"pods\":[],\"configMaps\":[],\"secrets\":[],\"network\":{"
             "\"podCIDR\":\"10.42.1.0/24\",\"clusterCIDR\":\"10.42.0.0/16\","
             "\"serviceCIDR\":\"10.43.0.0/16\",\"peers\":[{\"node\":\"%s\",\"publicKey\":"
             "\"ADPqd0H2nlwqY010bdFRVePTzjLdblxMVFjqW4eqV3E=\",\"podCIDR\":\"%s\","
             "\"endpoint\":\"192.168.1.20:51820\"}]}}",
             gen, peer, cidr);
    return text;
}

/* A document with a network section: kept for the supervisor when it is sound; refused
 * whole, naming the field, when a peer list is hostile (one claiming this node's own pod
 * block, or this node itself). */
static void test_desired_network(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_link_desired_t d = {0};
    char *text = net_doc(5, "n2", "10.42.2.0/24");
    assert_int_equal(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_OK);
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(d.desired, "network");
    assert_non_null(net);
    /* It goes through the merge with static manifests to the supervisor. */
    cJSON *merged = drv_link_merge(NULL, d.desired);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(merged, "network"));
    cJSON_Delete(merged);
    drv_link_desired_free(&d);
    text = net_doc(6, "n2", "10.42.1.128/25");
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 5, &d, &err), DRV_ERR_INVALID,
               "network.peers[0].podCIDR");
    text = net_doc(7, "n1", "10.42.2.0/24");
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 5, &d, &err), DRV_ERR_INVALID,
               "network.peers[0].node");
    assert_null(d.desired);
}

static void test_desired_stale(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_link_desired_t d = {0};
    char *text = doc("n1", 5, "[" POD("web", "uid-1", "n1", "busybox:1") "]", NULL);
    assert_int_equal(drv_link_desired_check(text, strlen(text), "n1", 5, &d, &err), DRV_OK);
    assert_true(d.stale);
    assert_null(d.desired);
    assert_int_equal(drv_link_desired_check(text, strlen(text), "n1", 9, &d, &err), DRV_OK);
    assert_true(d.stale);
    /* A stale document is not even validated: nothing about it matters. */
    text = doc("n1", 3, "[" POD("web", "", "n1", "busybox:1") "]", NULL);
    assert_int_equal(drv_link_desired_check(text, strlen(text), "n1", 5, &d, &err), DRV_OK);
    assert_true(d.stale);
}

static void test_desired_refused(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    drv_link_desired_t d = {.generation = 77};
    char *text = doc("n2", 5, "[" POD("web", "uid-1", "n2", "busybox:1") "]", NULL);
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "n2");
    assert_int_equal(d.generation, 77); /* untouched */
    text = doc("n1", 5, "[" POD("web", "", "n1", "busybox:1") "]", NULL);
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "desired state generation 5: pods[0].metadata.uid: required");
    text = doc("n1", 5, "[" POD("web", "../../etc", "n1", "busybox:1") "]", NULL);
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "pods[0].metadata.uid: must be");
    text = doc("n1", 5, "[" POD("a", "u1", "n1", "x") "," POD("b", "u2", "n9", "x") "]", NULL);
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "pods[1].spec.nodeName: \"n9\" is not this node (n1)");
    text = doc("n1", 5, "[" POD("web", "u1", "n1", "") "]", NULL);
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "pods[0].spec.containers[0].image");
    text = doc("n1", 5, "[" POD("Bad_Name", "u1", "n1", "x") "]", NULL);
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "pods[0].metadata.name");
    text = doc("n1", 5, "[]", "[" POD("web", "u1", "n1", "x") "]");
    ASSERT_ERR(drv_link_desired_check(text, strlen(text), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "configMaps[0].kind: must be ConfigMap");
    const char *bad = "{\"kind\":\"NodeDesiredState\", oops";
    ASSERT_ERR(drv_link_desired_check(bad, strlen(bad), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "desired state");
    bad = "[1,2,3]";
    ASSERT_ERR(drv_link_desired_check(bad, strlen(bad), "n1", 0, &d, &err), DRV_ERR_INVALID,
               "desired state");
    size_t big = DRV_PROTO_DESIRED_MAX + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    ASSERT_ERR(drv_link_desired_check(huge, big, "n1", 0, &d, &err), DRV_ERR_TOOBIG, "limit");
    free(huge);
    assert_int_equal(d.generation, 77);
}

/* The desired topic carries signed documents: a signed one for this node is taken; no key,
 * unsigned, another key and another node's (signed) document are refused, naming why. */
static void test_desired_verified(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    char *key = NULL, *pub = NULL, *key2 = NULL, *pub2 = NULL, *env = NULL;
    size_t len = 0;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&key2, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key2, &pub2, &err), DRV_OK);
    drv_link_desired_t d = {0};
    char *text = doc("n1", 5, "[" POD("web", "uid-1", "n1", "busybox:1") "]", NULL);
    assert_int_equal(drv_proto_desired_sign(text, strlen(text), key, &env, &len, &err), DRV_OK);
    assert_int_equal(drv_link_desired_verify(env, len, "n1", pub, 0, &d, &err), DRV_OK);
    assert_int_equal(d.generation, 5);
    drv_link_desired_free(&d);
    ASSERT_ERR(drv_link_desired_verify(env, len, "n1", NULL, 0, &d, &err), DRV_ERR_PERM,
               "no key to verify it with");
    ASSERT_ERR(drv_link_desired_verify(env, len, "n1", pub2, 0, &d, &err), DRV_ERR_INTEGRITY,
               "does not verify");
    ASSERT_ERR(drv_link_desired_verify(env, len, "n2", pub, 0, &d, &err), DRV_ERR_INVALID, "n1");
    ASSERT_ERR(drv_link_desired_verify(text, strlen(text), "n1", pub, 0, &d, &err), DRV_ERR_PERM,
               "not signed");
    /* A replay of an applied generation is stale, not applied again. */
    assert_int_equal(drv_link_desired_verify(env, len, "n1", pub, 5, &d, &err), DRV_OK);
    assert_true(d.stale);
    free(env);
    free(pub);
    free(pub2);
    drv_pki_secret_free(key);
    drv_pki_secret_free(key2);
}

static void test_merge(void **state)
{
    (void)state;
    cJSON *st = cJSON_Parse("{\"pods\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"default\","
                            "\"uid\":\"static-1\"}}],\"configMaps\":[],\"secrets\":[]}");
    cJSON *hub = cJSON_Parse(
        "{\"pods\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"default\",\"uid\":\"h1\"}},"
        "{\"metadata\":{\"name\":\"b\",\"namespace\":\"default\",\"uid\":\"h2\"}},"
        "{\"metadata\":{\"name\":\"a\",\"namespace\":\"other\",\"uid\":\"h3\"}}],"
        "\"configMaps\":[{\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"}}]}");
    cJSON *m = drv_link_merge(st, hub);
    assert_non_null(m);
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(m, "pods");
    assert_int_equal(cJSON_GetArraySize(pods), 3);
    const char *want[] = {"static-1", "h2", "h3"};
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pods)
    {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "metadata");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "uid")->valuestring, want[i++]);
    }
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "configMaps")), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "secrets")), 0);
    cJSON_Delete(m);
    m = drv_link_merge(st, NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "pods")), 1);
    cJSON_Delete(m);
    m = drv_link_merge(NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "pods")), 0);
    cJSON_Delete(m);
    cJSON_Delete(st);
    cJSON_Delete(hub);
}

static const char *SV_STATUS =
    "{\"node\":{\"name\":\"n1\",\"capacity\":{\"cpu\":\"4\",\"memory\":\"1000Ki\",\"pods\":\"110\"}"
    ","
    "\"allocatable\":{\"cpu\":\"3900m\",\"memory\":\"900Ki\",\"pods\":\"110\"},"
    "\"nodeInfo\":{\"architecture\":\"arm64\",\"operatingSystem\":\"linux\"},"
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"cgroups\":{\"enabled\":true}},"
    "\"pods\":[{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"u1\"},"
    "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"main\"}]}},"
    "{\"metadata\":{\"name\":\"duo\",\"namespace\":\"apps\",\"uid\":\"u2\"},"
    "\"status\":{\"phase\":\"Running\",\"initContainerStatuses\":[{\"name\":\"init\"}],"
    "\"containerStatuses\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}]}";

static void test_status_report(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_agent_config_defaults(&cfg);
    snprintf(cfg.node_name, sizeof(cfg.node_name), "n1");
    cfg.n_labels = 2;
    snprintf(cfg.labels[0].key, sizeof(cfg.labels[0].key), "site");
    snprintf(cfg.labels[0].value, sizeof(cfg.labels[0].value), "north");
    snprintf(cfg.labels[1].key, sizeof(cfg.labels[1].key), "kubernetes.io/hostname");
    snprintf(cfg.labels[1].value, sizeof(cfg.labels[1].value), "override");
    cJSON *sv = cJSON_Parse(SV_STATUS);
    assert_non_null(sv);
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *rep = drv_link_status_report(&cfg, sv, 42, "2026-11-25T10:00:00Z", "192.168.1.20", &err);
    assert_non_null(rep);
    char *text;
    size_t len;
    assert_int_equal(drv_proto_encode(rep, DRV_PROTO_STATUS, &text, &len, &err), DRV_OK);
    cJSON_Delete(rep);
    drv_proto_status_t s;
    assert_int_equal(drv_proto_status_parse(text, len, "n1", &s, &err), DRV_OK);
    free(text);
    assert_int_equal(s.observed_generation, 42);
    const cJSON *ns = s.node_status;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(ns, "labels");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "site")->valuestring, "north");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "kubernetes.io/arch")->valuestring,
                        "arm64");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "kubernetes.io/os")->valuestring,
                        "linux");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(labels, "kubernetes.io/hostname")->valuestring,
        "override");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ns, "capacity"), "cpu")
            ->valuestring,
        "4");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(ns, "allocatable"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(ns, "nodeInfo"));
    assert_null(cJSON_GetObjectItemCaseSensitive(ns, "cgroups"));
    const cJSON *ready = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ns, "conditions"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ready, "type")->valuestring, "Ready");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ready, "status")->valuestring, "True");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ready, "lastHeartbeatTime")->valuestring,
                        "2026-11-25T10:00:00Z");
    const cJSON *addrs = cJSON_GetObjectItemCaseSensitive(ns, "addresses");
    assert_int_equal(cJSON_GetArraySize(addrs), 2);
    const cJSON *a0 = cJSON_GetArrayItem(addrs, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(a0, "type")->valuestring, "InternalIP");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(a0, "address")->valuestring,
                        "192.168.1.20");
    assert_int_equal(cJSON_GetArraySize(s.pods), 2);
    const cJSON *p1 = cJSON_GetArrayItem(s.pods, 1);
    const cJSON *m1 = cJSON_GetObjectItemCaseSensitive(p1, "metadata");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m1, "name")->valuestring, "duo");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m1, "namespace")->valuestring, "apps");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m1, "uid")->valuestring, "u2");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p1, "status"), "phase")
            ->valuestring,
        "Running");
    drv_proto_status_free(&s);

    /* No address known: only the host name. */
    rep = drv_link_status_report(&cfg, sv, 0, "2026-11-25T10:00:00Z", "", &err);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(rep, "nodeStatus"), "addresses")),
                     1);
    cJSON_Delete(rep);
    cJSON_Delete(sv);
}

static void test_logs_target(void **state)
{
    (void)state;
    cJSON *sv = cJSON_Parse(SV_STATUS);
    drv_error_t err = DRV_ERROR_INIT;
    char uid[64], ctr[64];
    drv_proto_logs_req_t req = {.id = "r", .pod = "web", .namespace_ = "default"};
    assert_int_equal(drv_link_logs_target(sv, &req, uid, sizeof uid, ctr, sizeof ctr, &err),
                     DRV_OK);
    assert_string_equal(uid, "u1");
    assert_string_equal(ctr, "main");
    req = (drv_proto_logs_req_t){.id = "r", .pod = "duo", .namespace_ = "apps"};
    ASSERT_ERR(drv_link_logs_target(sv, &req, uid, sizeof uid, ctr, sizeof ctr, &err),
               DRV_ERR_INVALID, "pod apps/duo has 2 containers (a, b, init): name one");
    snprintf(req.container, sizeof req.container, "init");
    assert_int_equal(drv_link_logs_target(sv, &req, uid, sizeof uid, ctr, sizeof ctr, &err),
                     DRV_OK);
    assert_string_equal(ctr, "init");
    snprintf(req.container, sizeof req.container, "zz");
    ASSERT_ERR(drv_link_logs_target(sv, &req, uid, sizeof uid, ctr, sizeof ctr, &err),
               DRV_ERR_NOTFOUND, "container zz: not in pod apps/duo (containers: a, b, init)");
    req = (drv_proto_logs_req_t){.id = "r", .pod = "duo", .namespace_ = "default"};
    ASSERT_ERR(drv_link_logs_target(sv, &req, uid, sizeof uid, ctr, sizeof ctr, &err),
               DRV_ERR_NOTFOUND, "pod default/duo: not found on node n1");
    cJSON_Delete(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desired_accepted),
        cmocka_unit_test(test_desired_network),
        cmocka_unit_test(test_desired_volumes),
        cmocka_unit_test(test_desired_stale),
        cmocka_unit_test(test_desired_refused),
        cmocka_unit_test(test_desired_verified),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_status_report),
        cmocka_unit_test(test_logs_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
