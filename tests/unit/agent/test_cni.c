/* CNI: the network configuration list the agent generates, the parsing of plugin results and
 * errors (including hostile output), and the plugin runner against fake plugins (shell
 * scripts in a temporary directory): environment, stdin chaining, timeouts, size caps. No
 * root and no real network needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/file.h"
#include "runtime/cni.h"

static char tmpdir[256];

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drover-test-cni-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static cJSON *build(const drv_cni_config_t *cfg)
{
    cJSON *out = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_cni_conflist_build(cfg, true, &out, &err);
    if (rc != DRV_OK)
        fail_msg("conflist: %s", drv_error_msg(&err));
    return out;
}

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* Expects cfg to be refused with a message containing want. */
static void expect_bad_config(const drv_cni_config_t *cfg, const char *want)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *out = (cJSON *)0x1;
    assert_int_equal(drv_cni_conflist_build(cfg, true, &out, &err), DRV_ERR_INVALID);
    assert_ptr_equal(out, (cJSON *)0x1);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
}

static void expect_bad_result(const char *data, size_t len, const char *want)
{
    drv_cni_result_t r;
    memset(&r, 0x5a, sizeof(r));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_result_parse(data, len, &r, &err), DRV_ERR_PROTO);
    assert_int_equal((unsigned char)r.ip[0], 0x5a); /* untouched */
    if (strstr(err.msg, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
}

#define BAD(s, want) expect_bad_result((s), strlen(s), (want))

static void expect_msg(const drv_error_t *err, const char *want)
{
    if (strstr(err->msg, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, want);
}

/* ---- conflist ---- */

static void test_conflist_defaults(void **state)
{
    drv_cni_config_t cfg = {.state_dir = "/var/lib/drover"};
    cJSON *list = build(&cfg);
    assert_string_equal(str_at(list, "cniVersion"), "1.0.0");
    assert_string_equal(str_at(list, "name"), "drover");
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(list, "plugins");
    assert_int_equal(cJSON_GetArraySize(plugins), 2);

    const cJSON *br = cJSON_GetArrayItem(plugins, 0);
    assert_string_equal(str_at(br, "type"), "bridge");
    assert_string_equal(str_at(br, "bridge"), "drover0");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(br, "isGateway")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(br, "ipMasq")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(br, "hairpinMode")));
    const cJSON *ipam = cJSON_GetObjectItemCaseSensitive(br, "ipam");
    assert_string_equal(str_at(ipam, "type"), "host-local");
    assert_string_equal(str_at(ipam, "dataDir"), "/var/lib/drover/cni/networks");
    const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(ipam, "ranges");
    assert_int_equal(cJSON_GetArraySize(ranges), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(ranges, 0)), 1);
    assert_string_equal(str_at(cJSON_GetArrayItem(cJSON_GetArrayItem(ranges, 0), 0), "subnet"),
                        "10.88.0.0/16");
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(ipam, "routes");
    assert_string_equal(str_at(cJSON_GetArrayItem(routes, 0), "dst"), "0.0.0.0/0");

    const cJSON *pm = cJSON_GetArrayItem(plugins, 1);
    assert_string_equal(str_at(pm, "type"), "portmap");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pm, "snat")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(pm, "capabilities"), "portMappings")));
    cJSON_Delete(list);
}

/* Without host ports the list is the bridge alone: no portmap run that passes the result on. */
static void test_conflist_no_portmap(void **state)
{
    (void)state;
    drv_cni_config_t cfg = {.state_dir = "/var/lib/drover"};
    cJSON *list = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_conflist_build(&cfg, false, &list, &err), DRV_OK);
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(list, "plugins");
    assert_int_equal(cJSON_GetArraySize(plugins), 1);
    assert_string_equal(str_at(cJSON_GetArrayItem(plugins, 0), "type"), "bridge");
    cJSON_Delete(list);
}

static void test_conflist_custom(void **state)
{
    drv_cni_config_t cfg = {.state_dir = "/data/st\"ate",
                            .subnet = "192.168.64.0/24",
                            .bridge = "cni9",
                            .network_name = "edge-net_1.x"};
    cJSON *list = build(&cfg);
    assert_string_equal(str_at(list, "name"), "edge-net_1.x");
    const cJSON *br = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "plugins"), 0);
    assert_string_equal(str_at(br, "bridge"), "cni9");
    const cJSON *ipam = cJSON_GetObjectItemCaseSensitive(br, "ipam");
    /* A quote in a path survives as data, not as JSON syntax. */
    assert_string_equal(str_at(ipam, "dataDir"), "/data/st\"ate/cni/networks");
    const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(ipam, "ranges");
    assert_string_equal(str_at(cJSON_GetArrayItem(cJSON_GetArrayItem(ranges, 0), 0), "subnet"),
                        "192.168.64.0/24");
    cJSON_Delete(list);
}

static void test_conflist_bad_config(void **state)
{
    drv_cni_config_t c = {.state_dir = "/var/lib/drover"};
    c.subnet = "10.88.0.0";
    expect_bad_config(&c, "cni.subnet: \"10.88.0.0\" is not an IPv4 CIDR");
    c.subnet = "banana/16";
    expect_bad_config(&c, "cni.subnet");
    c.subnet = "10.88.0.0/16x";
    expect_bad_config(&c, "cni.subnet");
    c.subnet = "10.88.0.0/33";
    expect_bad_config(&c, "cni.subnet");
    c.subnet = "fd00::/64";
    expect_bad_config(&c, "is not an IPv4 CIDR");
    c.subnet = "10.88.0.0/31";
    expect_bad_config(&c, "prefix /31 must be between /8 and /30");
    c.subnet = "10.0.0.0/7";
    expect_bad_config(&c, "prefix /7");
    c.subnet = "10.88.0.5/16";
    expect_bad_config(&c, "has host bits set (did you mean 10.88.0.0/16?)");
    c.subnet = NULL;

    c.bridge = "a-very-long-bridge";
    expect_bad_config(&c, "cni.bridge");
    c.bridge = "br/0";
    expect_bad_config(&c, "cni.bridge");
    c.bridge = "";
    expect_bad_config(&c, "cni.bridge");
    c.bridge = NULL;

    c.network_name = "-net";
    expect_bad_config(&c, "cni.networkName");
    c.network_name = "a b";
    expect_bad_config(&c, "cni.networkName");
    c.network_name = NULL;

    c.state_dir = NULL;
    expect_bad_config(&c, "cni.stateDir: required");
    c.state_dir = "relative/dir";
    expect_bad_config(&c, "cni.stateDir: must be an absolute path");
    c.state_dir = "/var/lib/drover";

    c.plugin_dir = "lib/cni";
    expect_bad_config(&c, "cni.pluginDir");
    c.plugin_dir = NULL;
    c.timeout_ms = 3600000;
    expect_bad_config(&c, "cni.timeout");

    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_config_validate(NULL, &err), DRV_ERR_INVALID);
}

static void test_ports_validate(void **state)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_cni_port_t ok[] = {{8080, 18080, "TCP", NULL},
                           {53, 5353, "udp", "192.0.2.1"},
                           {53, 5353, "TCP", ""},
                           {9, 9, NULL, "::1"}};
    assert_int_equal(drv_cni_ports_validate(ok, 4, &err), DRV_OK);
    assert_int_equal(drv_cni_ports_validate(NULL, 0, &err), DRV_OK);

    drv_cni_port_t bad_proto[] = {{80, 80, "TCP", NULL}, {80, 81, "icmp", NULL}};
    assert_int_equal(drv_cni_ports_validate(bad_proto, 2, &err), DRV_ERR_INVALID);
    expect_msg(&err, "ports[1].protocol: must be TCP, UDP or SCTP, not \"icmp\"");
    drv_cni_port_t zero[] = {{0, 80, NULL, NULL}};
    assert_int_equal(drv_cni_ports_validate(zero, 1, &err), DRV_ERR_INVALID);
    expect_msg(&err, "ports[0].containerPort");
    drv_cni_port_t nohost[] = {{80, 0, NULL, NULL}};
    assert_int_equal(drv_cni_ports_validate(nohost, 1, &err), DRV_ERR_INVALID);
    expect_msg(&err, "ports[0].hostPort");
    drv_cni_port_t badip[] = {{80, 80, NULL, "300.1.1.1"}};
    assert_int_equal(drv_cni_ports_validate(badip, 1, &err), DRV_ERR_INVALID);
    expect_msg(&err, "ports[0].hostIP: \"300.1.1.1\" is not an IP address");
    drv_cni_port_t dup[] = {{80, 8080, "tcp", NULL}, {81, 8080, "TCP", NULL}};
    assert_int_equal(drv_cni_ports_validate(dup, 2, &err), DRV_ERR_INVALID);
    expect_msg(&err, "ports[1].hostPort: 8080/tcp is mapped twice (also ports[0])");
}

/* ---- results ---- */

static const char bridge_result[] =
    "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"drover0\",\"mac\":\"26:0b:e2:b9:ab:19\"}"
    ","
    "{\"name\":\"veth865a4353\",\"mac\":\"66:f4:e1:2e:5d:c6\"},{\"name\":\"eth0\",\"mac\":"
    "\"ae:f2:6c:76:12:2c\",\"sandbox\":\"/run/drover/pods/u1/ns/net\"}],\"ips\":[{\"interface\":2,"
    "\"address\":\"10.88.0.2/16\",\"gateway\":\"10.88.0.1\"}],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],"
    "\"dns\":{}}\n";

static void test_result_bridge(void **state)
{
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_result_parse(bridge_result, strlen(bridge_result), &r, &err), DRV_OK);
    assert_string_equal(r.ip, "10.88.0.2");
    assert_int_equal(r.prefix_len, 16);
    assert_string_equal(r.gateway, "10.88.0.1");
    assert_non_null(r.json);
    /* The kept JSON is the same result, ready to be a prevResult. */
    cJSON *again = cJSON_Parse(r.json);
    assert_non_null(again);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(again, "interfaces")), 3);
    cJSON_Delete(again);
    drv_cni_result_free(&r);
    assert_null(r.json);
    drv_cni_result_free(&r); /* twice is fine */
}

static void test_result_variants(void **state)
{
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    /* 0.4.0 shape: "version" and no interface index. */
    const char *v04 = "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":"
                      "\"10.1.2.3/24\"}]}";
    assert_int_equal(drv_cni_result_parse(v04, strlen(v04), &r, &err), DRV_OK);
    assert_string_equal(r.ip, "10.1.2.3");
    assert_int_equal(r.prefix_len, 24);
    assert_string_equal(r.gateway, "");
    drv_cni_result_free(&r);

    /* IPv6 first, then IPv4: the IPv4 one is the pod IP. */
    const char *dual = "{\"ips\":[{\"address\":\"fd00::5/64\"},{\"address\":\"10.9.0.7/16\"}]}";
    assert_int_equal(drv_cni_result_parse(dual, strlen(dual), &r, &err), DRV_OK);
    assert_string_equal(r.ip, "10.9.0.7");
    drv_cni_result_free(&r);

    /* The address on the sandbox interface wins over one on a host interface. */
    const char *two = "{\"interfaces\":[{\"name\":\"br\"},{\"name\":\"eth0\",\"sandbox\":\"/x\"}],"
                      "\"ips\":[{\"interface\":0,\"address\":\"10.0.0.1/16\"},"
                      "{\"interface\":1,\"address\":\"10.0.0.9/16\"}]}";
    assert_int_equal(drv_cni_result_parse(two, strlen(two), &r, &err), DRV_OK);
    assert_string_equal(r.ip, "10.0.0.9");
    drv_cni_result_free(&r);
}

static void test_result_malformed(void **state)
{
    BAD("", "empty result");
    BAD("hello world", "result is not JSON (starts \"hello world\")");
    BAD("\x01\x02garbage\n", "result is not JSON");
    BAD("{\"ips\":[", "result is not JSON");
    BAD("{} trailing", "result is not JSON");
    BAD("[1,2]", "not a JSON object");
    BAD("{\"cniVersion\":\"1.0.0\"}", "result has no \"ips\"");
    BAD("{\"ips\":{}}", "\"ips\" is not an array");
    BAD("{\"ips\":[]}", "no IPv4 address");
    BAD("{\"ips\":[{\"address\":\"fd00::1/64\"}]}", "no IPv4 address");
    BAD("{\"ips\":[{\"address\":\"10.0.0.2\"}]}",
        "ips[0].address: \"10.0.0.2\" is not an IP address with a prefix");
    BAD("{\"ips\":[{\"address\":\"999.0.0.2/8\"}]}", "ips[0].address");
    BAD("{\"ips\":[{\"address\":\"10.0.0.2/40\"}]}", "ips[0].address");
    BAD("{\"ips\":[{\"address\":7}]}", "ips[0].address: missing");
    BAD("{\"ips\":[\"10.0.0.2/8\"]}", "ips[0] is not an object");
    BAD("{\"ips\":[{\"interface\":5,\"address\":\"10.0.0.2/8\"}]}",
        "ips[0].interface: 5 names no interface");
    BAD("{\"ips\":[{\"interface\":-1,\"address\":\"10.0.0.2/8\"}]}",
        "ips[0].interface: not an index");
    BAD("{\"ips\":[{\"address\":\"10.0.0.2/8\",\"gateway\":\"x\"}]}", "ips[0].gateway");
    BAD("{\"code\":7,\"msg\":\"nope\"}", "result is an error object: nope");

    /* Huge: refused by size before parsing. */
    size_t n = DRV_CNI_RESULT_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    expect_bad_result(big, n, "over the 262144 byte limit");
    free(big);

    /* Deep nesting is just a parse failure, not a crash. */
    n = 200000;
    char *deep = malloc(n);
    assert_non_null(deep);
    memset(deep, '[', n);
    expect_bad_result(deep, n, "result is not JSON");
    free(deep);
}

static void test_plugin_error(void **state)
{
    drv_error_t err = DRV_ERROR_INIT;
    const char *obj = "{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"failed to allocate for "
                      "range 0\",\"details\":\"no IP addresses\\navailable\"}";
    assert_int_equal(drv_cni_plugin_error("bridge", "ADD", 1 << 8, obj, strlen(obj), "", &err),
                     DRV_ERR_AGAIN);
    assert_string_equal(err.msg, "cni bridge ADD: failed to allocate for range 0: no IP addresses "
                                 "available (code 11)");

    const char *cfg = "{\"code\":7,\"msg\":\"invalid config\"}";
    assert_int_equal(drv_cni_plugin_error("portmap", "DEL", 1 << 8, cfg, strlen(cfg), NULL, &err),
                     DRV_ERR_INVALID);
    assert_string_equal(err.msg, "cni portmap DEL: invalid config (code 7)");

    assert_int_equal(drv_cni_plugin_error("bridge", "ADD", 2 << 8, "not json", 8,
                                          "panic: runtime error\ngoroutine 1\n", &err),
                     DRV_ERR_IO);
    assert_string_equal(err.msg, "cni bridge ADD: exit status 2: panic: runtime error goroutine 1");

    assert_int_equal(drv_cni_plugin_error("bridge", "CHECK", SIGKILL, NULL, 0, "", &err),
                     DRV_ERR_IO);
    assert_string_equal(err.msg, "cni bridge CHECK: killed by signal 9, no error message");

    assert_int_equal(drv_cni_plugin_error("x", "ADD", 1 << 8, "oops", 4, "", &err), DRV_ERR_IO);
    assert_string_equal(err.msg, "cni x ADD: exit status 1, output \"oops\"");
}

/* ---- the runner, against fake plugins ---- */

static void write_plugin(const char *name, const char *body)
{
    char path[512], text[4096];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    int n = snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_file_write_atomic(path, text, (size_t)n, 0755, &err), DRV_OK);
}

static char *slurp(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    char *data = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, 1 << 20, &data, NULL, &err) != DRV_OK)
        return NULL;
    return data;
}

static void unlink_in_tmp(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    unlink(path);
}

static cJSON *fake_list(const char *const *types, size_t n, bool portmap_caps)
{
    cJSON *list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "cniVersion", "1.0.0");
    cJSON_AddStringToObject(list, "name", "fakenet");
    cJSON *plugins = cJSON_AddArrayToObject(list, "plugins");
    for (size_t i = 0; i < n; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", types[i]);
        cJSON_AddNumberToObject(p, "position", (double)i);
        if (portmap_caps && i == n - 1)
            cJSON_AddTrueToObject(cJSON_AddObjectToObject(p, "capabilities"), "portMappings");
        cJSON_AddItemToArray(plugins, p);
    }
    return list;
}

static const drv_cni_pod_t fake_pod = {
    .container_id = "0b5e2f6c-1111-4c1e-9d7a-3b9c2a1f0e55",
    .netns = "/run/drover/pods/x/ns/net",
    .pod_name = "web-1",
    .pod_namespace = "default",
};

/* Logs every call (command, plugin) to calls.log and keeps stdin and the environment. */
#define LOGGER(name)                                                                               \
    "echo \"$CNI_COMMAND " name "\" >> \"$(dirname \"$0\")/calls.log\"\n"                          \
    "cat > \"$0.$CNI_COMMAND.stdin\"\nenv > \"$0.$CNI_COMMAND.env\"\n"

static void test_run_chain(void **state)
{
    write_plugin("fa", LOGGER("fa") "[ \"$CNI_COMMAND\" = ADD ] && printf '%s' "
                                    "'{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.5.0.4/"
                                    "16\",\"gateway\":\"10.5.0.1\"}]}'\nexit 0");
    write_plugin("fb", LOGGER("fb") "[ \"$CNI_COMMAND\" = ADD ] && printf '%s' "
                                    "'{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.5.0.4/"
                                    "16\"}],\"dns\":{}}'\nexit 0");
    unlink_in_tmp("calls.log");
    const char *types[] = {"fa", "fb"};
    cJSON *list = fake_list(types, 2, true);
    drv_cni_port_t ports[] = {{8080, 18080, "TCP", "192.0.2.1"}};
    drv_cni_pod_t pod = fake_pod;
    pod.ports = ports;
    pod.nports = 1;
    drv_cni_config_t cfg = {.plugin_dir = tmpdir};
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_add(&cfg, list, &pod, &r, &err), DRV_OK);
    assert_string_equal(r.ip, "10.5.0.4");

    char *log = slurp("calls.log");
    assert_string_equal(log, "ADD fa\nADD fb\n");
    free(log);

    /* The first plugin gets the list's name and version, no prevResult, no runtimeConfig. */
    char *in = slurp("fa.ADD.stdin");
    cJSON *a = cJSON_Parse(in);
    assert_non_null(a);
    assert_string_equal(str_at(a, "name"), "fakenet");
    assert_string_equal(str_at(a, "cniVersion"), "1.0.0");
    assert_string_equal(str_at(a, "type"), "fa");
    assert_null(cJSON_GetObjectItemCaseSensitive(a, "prevResult"));
    assert_null(cJSON_GetObjectItemCaseSensitive(a, "runtimeConfig"));
    cJSON_Delete(a);
    free(in);

    /* The second gets the first's result and, having the capability, the port mappings. */
    in = slurp("fb.ADD.stdin");
    cJSON *b = cJSON_Parse(in);
    assert_non_null(b);
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(b, "prevResult");
    assert_string_equal(
        str_at(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(prev, "ips"), 0), "gateway"),
        "10.5.0.1");
    const cJSON *pm = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "runtimeConfig"),
                                         "portMappings"),
        0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(pm, "hostPort")->valueint, 18080);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(pm, "containerPort")->valueint, 8080);
    assert_string_equal(str_at(pm, "protocol"), "tcp");
    assert_string_equal(str_at(pm, "hostIP"), "192.0.2.1");
    cJSON_Delete(b);
    free(in);

    /* The environment of the CNI spec, and a PATH for iptables. */
    char *env = slurp("fa.ADD.env");
    assert_non_null(strstr(env, "CNI_COMMAND=ADD\n"));
    assert_non_null(strstr(env, "CNI_CONTAINERID=0b5e2f6c-1111-4c1e-9d7a-3b9c2a1f0e55\n"));
    assert_non_null(strstr(env, "CNI_NETNS=/run/drover/pods/x/ns/net\n"));
    assert_non_null(strstr(env, "CNI_IFNAME=eth0\n"));
    char want[512];
    snprintf(want, sizeof(want), "CNI_PATH=%s\n", tmpdir);
    assert_non_null(strstr(env, want));
    assert_non_null(strstr(env, "K8S_POD_NAME=web-1"));
    assert_non_null(strstr(env, "PATH=/usr/local/sbin:"));
    free(env);

    /* DEL runs in reverse order, with the ADD result as prevResult and no netns if gone. */
    unlink_in_tmp("calls.log");
    pod.netns = NULL;
    assert_int_equal(drv_cni_del(&cfg, list, &pod, r.json, &err), DRV_OK);
    log = slurp("calls.log");
    assert_string_equal(log, "DEL fb\nDEL fa\n");
    free(log);
    in = slurp("fa.DEL.stdin");
    a = cJSON_Parse(in);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(a, "prevResult"));
    cJSON_Delete(a);
    free(in);
    env = slurp("fa.DEL.env");
    assert_null(strstr(env, "CNI_NETNS="));
    free(env);

    /* CHECK in order, and it needs the result. */
    unlink_in_tmp("calls.log");
    pod.netns = fake_pod.netns;
    assert_int_equal(drv_cni_check(&cfg, list, &pod, r.json, &err), DRV_OK);
    log = slurp("calls.log");
    assert_string_equal(log, "CHECK fa\nCHECK fb\n");
    free(log);
    assert_int_equal(drv_cni_check(&cfg, list, &pod, NULL, &err), DRV_ERR_INVALID);

    drv_cni_result_free(&r);
    cJSON_Delete(list);
}

static void test_run_failure_rolls_back(void **state)
{
    write_plugin("fa", LOGGER("fa") "[ \"$CNI_COMMAND\" = ADD ] && printf '%s' "
                                    "'{\"ips\":[{\"address\":\"10.5.0.4/16\"}]}'\nexit 0");
    write_plugin("ffail", LOGGER("ffail") "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
                                          "printf '%s' '{\"code\":5,\"msg\":\"cannot set up "
                                          "iptables\",\"details\":\"exit 4\"}'\nexit 1\nfi");
    unlink_in_tmp("calls.log");
    const char *types[] = {"fa", "ffail"};
    cJSON *list = fake_list(types, 2, false);
    drv_cni_config_t cfg = {.plugin_dir = tmpdir};
    drv_cni_result_t r;
    memset(&r, 0, sizeof(r));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_add(&cfg, list, &fake_pod, &r, &err), DRV_ERR_IO);
    assert_string_equal(err.msg, "cni ffail ADD: cannot set up iptables: exit 4 (code 5)");
    assert_null(r.json);
    /* All or nothing: DEL for the whole list, in reverse. */
    char *log = slurp("calls.log");
    assert_string_equal(log, "ADD fa\nADD ffail\nDEL ffail\nDEL fa\n");
    free(log);
    cJSON_Delete(list);
}

static void run_single(const char *body, unsigned timeout_ms, drv_err_t want_rc,
                       const char *want_msg)
{
    write_plugin("fx", body);
    const char *types[] = {"fx"};
    cJSON *list = fake_list(types, 1, false);
    drv_cni_config_t cfg = {.plugin_dir = tmpdir, .timeout_ms = timeout_ms};
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_cni_add(&cfg, list, &fake_pod, &r, &err);
    cJSON_Delete(list);
    if (rc == DRV_OK)
        drv_cni_result_free(&r);
    assert_int_equal(rc, want_rc);
    expect_msg(&err, want_msg);
}

static void test_run_hostile_output(void **state)
{
    run_single("[ \"$CNI_COMMAND\" = ADD ] && echo 'this is not json'; exit 0", 0, DRV_ERR_PROTO,
               "cni fx ADD: result is not a JSON object (starts \"this is not json\")");
    run_single("[ \"$CNI_COMMAND\" = ADD ] && echo '{\"cniVersion\":\"1.0.0\"}'; exit 0", 0,
               DRV_ERR_PROTO, "cni fx ADD: result has no \"ips\"");
    /* 1 MB of output: cut off at the cap, the plugin killed. */
    run_single("[ \"$CNI_COMMAND\" = ADD ] && head -c 1000000 /dev/zero | tr '\\000' a; exit 0", 0,
               DRV_ERR_PROTO, "cni fx ADD: output over the 262144 byte limit");
    /* Lots of stderr is fine: only the start is kept. */
    run_single("head -c 500000 /dev/zero | tr '\\000' e >&2; [ \"$CNI_COMMAND\" = ADD ] && exit 3; "
               "exit 0",
               0, DRV_ERR_IO, "cni fx ADD: exit status 3: eeee");
    run_single("kill -9 $$", 0, DRV_ERR_IO, "cni fx ADD: killed by signal 9");
    /* A plugin that does not read its stdin is judged by its output. */
    run_single("[ \"$CNI_COMMAND\" = ADD ] && echo '{\"ips\":[{\"address\":\"10.0.0.3/8\"}]}'; "
               "exit 0",
               0, DRV_OK, "");
}

static void test_run_timeout(void **state)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* The DEL of the rollback must not hang either: every call sleeps. */
    run_single("sleep 20", 300, DRV_ERR_TIMEOUT, "cni fx ADD: no answer within 300 ms");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 3.0);
}

static void test_run_missing_plugin(void **state)
{
    const char *types[] = {"nothere"};
    cJSON *list = fake_list(types, 1, false);
    drv_cni_config_t cfg = {.plugin_dir = tmpdir};
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_cni_add(&cfg, list, &fake_pod, &r, &err), DRV_ERR_IO);
    expect_msg(&err, "cni nothere ADD: cannot run ");
    expect_msg(&err, "No such file or directory");

    /* A stored list with a path for a type is refused, not run. */
    cJSON_SetValuestring(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "plugins"), 0), "type"),
        "../../bin/sh");
    assert_int_equal(drv_cni_del(&cfg, list, &fake_pod, NULL, &err), DRV_ERR_INVALID);
    expect_msg(&err, "plugins[0].type");
    cJSON_Delete(list);

    drv_cni_config_t pre = {.plugin_dir = tmpdir};
    assert_int_equal(drv_cni_preflight(&pre, &err), DRV_ERR_NOTFOUND);
    expect_msg(&err, "plugin \"bridge\" not found");
    expect_msg(&err, "containernetworking-plugins");
}

static void test_run_bad_pod(void **state)
{
    const char *types[] = {"fa"};
    cJSON *list = fake_list(types, 1, false);
    drv_cni_config_t cfg = {.plugin_dir = tmpdir};
    drv_cni_result_t r;
    drv_error_t err = DRV_ERROR_INIT;
    drv_cni_pod_t pod = fake_pod;
    pod.container_id = "../etc";
    assert_int_equal(drv_cni_add(&cfg, list, &pod, &r, &err), DRV_ERR_INVALID);
    expect_msg(&err, "container id");
    pod = fake_pod;
    pod.netns = NULL;
    assert_int_equal(drv_cni_add(&cfg, list, &pod, &r, &err), DRV_ERR_INVALID);
    expect_msg(&err, "network namespace path required");
    pod = fake_pod;
    pod.pod_name = "a;CNI_NETNS=/x";
    assert_int_equal(drv_cni_add(&cfg, list, &pod, &r, &err), DRV_ERR_INVALID);
    pod = fake_pod;
    pod.ifname = "eth0/../x";
    assert_int_equal(drv_cni_add(&cfg, list, &pod, &r, &err), DRV_ERR_INVALID);
    cJSON_Delete(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conflist_defaults),
        cmocka_unit_test(test_conflist_no_portmap),
        cmocka_unit_test(test_conflist_custom),
        cmocka_unit_test(test_conflist_bad_config),
        cmocka_unit_test(test_ports_validate),
        cmocka_unit_test(test_result_bridge),
        cmocka_unit_test(test_result_variants),
        cmocka_unit_test(test_result_malformed),
        cmocka_unit_test(test_plugin_error),
        cmocka_unit_test(test_run_chain),
        cmocka_unit_test(test_run_failure_rolls_back),
        cmocka_unit_test(test_run_hostile_output),
        cmocka_unit_test(test_run_timeout),
        cmocka_unit_test(test_run_missing_plugin),
        cmocka_unit_test(test_run_bad_pod),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
