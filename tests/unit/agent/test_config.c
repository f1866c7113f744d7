/* The agent's configuration file: defaults, every key, and clear errors naming the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "config/config.h"
#include "pod/pvc.h"
#include "drover/buf.h"

static drv_err_t parse(const char *text, drv_agent_config_t *cfg, drv_error_t *err)
{
    drv_agent_config_defaults(cfg);
    return drv_agent_config_parse("agent.yaml", text, strlen(text), cfg, err);
}

static void test_defaults(void **state)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(parse("", &cfg, &err), DRV_OK);
    assert_string_equal(cfg.state_dir, "/var/lib/drover");
    assert_string_equal(cfg.manifest_dir, "/etc/drover/manifests");
    assert_string_equal(cfg.pod_subnet, "10.88.0.0/16");
    assert_int_equal(cfg.cgroups, DRV_CGROUPS_AUTO);
    assert_false(cfg.allow_no_cgroups);
    assert_int_equal(cfg.log_max_bytes, 10 * 1024 * 1024);
    assert_true(cfg.node_name[0] != '\0');
}

static void test_all_keys(void **state)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    const char *text =
        "nodeName: pi-07\nstateDir: /data/drover\nrunDir: /run/d\nmanifestDir: /etc/d/m\n"
        "platform: linux/arm/v7\nlogLevel: debug\ncgroups: required\nallowNoCgroups: true\n"
        "crun: /usr/local/bin/crun\nseccompProfile: /etc/seccomp.json\npodSubnet: 10.99.0.0/24\n"
        "bridge: cni9\ncniPluginDir: /opt/cni/bin\ncontainerLogMaxBytes: 1Mi\n"
        "containerLogMaxFiles: 5\nmaxLayerBytes: 2Gi\nimageGCHighPercent: 90\n"
        "imageGCLowPercent: 80\npidsLimit: 512\n"
        "registries:\n- {host: \"127.0.0.1:5000\", insecure: true}\n"
        "- {host: ghcr.io, username: bot, password: hunter2}\n";
    assert_int_equal(parse(text, &cfg, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "pi-07");
    assert_string_equal(cfg.state_dir, "/data/drover");
    assert_string_equal(cfg.platform, "linux/arm/v7");
    assert_int_equal(cfg.cgroups, DRV_CGROUPS_REQUIRED);
    assert_true(cfg.allow_no_cgroups);
    assert_int_equal(cfg.log_max_bytes, 1024 * 1024);
    assert_int_equal(cfg.log_max_files, 5);
    assert_int_equal(cfg.max_layer_bytes, 2ull << 30);
    assert_int_equal(cfg.default_pids_limit, 512);
    assert_int_equal(cfg.n_registries, 2);
    const drv_registry_conf_t *r = drv_agent_config_registry(&cfg, "127.0.0.1:5000");
    assert_non_null(r);
    assert_true(r->insecure);
    r = drv_agent_config_registry(&cfg, "ghcr.io");
    assert_non_null(r);
    assert_string_equal(r->username, "bot");
    assert_null(drv_agent_config_registry(&cfg, "docker.io"));
}

static void test_every_problem_named(void **state)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    const char *text = "nodeName: Bad/Name\nstateDir: relative\ncgroups: maybe\nlogLevel: loud\n"
                       "containerLogMaxBytes: lots\nimageGCHighPercent: 101\nstatedir: /typo\n"
                       "registries:\n- {host: \"a b\"}\n- {host: x, username: u}\n- 5\n";
    assert_int_equal(parse(text, &cfg, &err), DRV_ERR_INVALID);
    const char *m = drv_error_msg(&err);
    const char *want[] = {"agent.yaml: nodeName: ",
                          "agent.yaml: stateDir: must be an absolute path",
                          "agent.yaml: cgroups: must be auto, required or disabled",
                          "agent.yaml: logLevel: must be",
                          "agent.yaml: containerLogMaxBytes: must be a size",
                          "agent.yaml: imageGCHighPercent: must be a whole number from 1 to 100",
                          "agent.yaml: statedir: unknown key",
                          "agent.yaml: registries[0]: host: required",
                          "agent.yaml: registries[1]: username and password go together",
                          "agent.yaml: registries[2]: must be a mapping"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(m, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], m);
    /* A bad file changes nothing. */
    assert_string_equal(cfg.state_dir, "/var/lib/drover");
}

/* The cluster network's section: on by default, off by name; bad values named. */
static void test_network(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(parse("nodeName: n1\n", &cfg, &err), DRV_OK);
    assert_true(cfg.cluster_network);
    assert_string_equal(cfg.wg_interface, "drover-wg");
    assert_int_equal(
        parse("network: {mode: off, wireguardInterface: wg9, toolDir: /opt/bin}\n", &cfg, &err),
        DRV_OK);
    assert_false(cfg.cluster_network);
    assert_string_equal(cfg.wg_interface, "wg9");
    assert_string_equal(cfg.wg_tool_dir, "/opt/bin");
    assert_int_equal(parse("network: {mode: mesh, wireguardInterface: \"a b\", toolDir: rel, "
                           "behindNat: true}\n",
                           &cfg, &err),
                     DRV_ERR_INVALID);
    const char *m = drv_error_msg(&err);
    const char *want[] = {"network.mode: must be auto or off", "network.wireguardInterface: ",
                          "network.toolDir: must be an absolute path",
                          "network.behindNat: unknown key"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(m, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], m);
    assert_int_equal(parse("network: off\n", &cfg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "network: must be a mapping"));
}

/* storage.dir: where claims' directories live (pod/pvc.h); default <stateDir>/storage. */
static void test_storage(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    char dir[256];
    assert_int_equal(parse("stateDir: /data/drover\n", &cfg, &err), DRV_OK);
    assert_string_equal(cfg.storage_dir, "");
    pod_pvc_storage_dir(&cfg, dir, sizeof(dir));
    assert_string_equal(dir, "/data/drover/storage");
    assert_int_equal(parse("storage: {dir: /mnt/ssd/volumes}\n", &cfg, &err), DRV_OK);
    pod_pvc_storage_dir(&cfg, dir, sizeof(dir));
    assert_string_equal(dir, "/mnt/ssd/volumes");
    assert_int_equal(parse("storage: {dir: relative, size: 1Gi}\n", &cfg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "storage.dir: must be an absolute path"));
    assert_non_null(strstr(drv_error_msg(&err), "storage.size: unknown key"));
    assert_int_equal(parse("storage: /mnt\n", &cfg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "storage: must be a mapping of dir"));
}

static void test_hub_and_labels(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(parse("", &cfg, &err), DRV_OK);
    assert_string_equal(cfg.hub_broker, "");
    assert_int_equal(cfg.hub_heartbeat_s, 2);
    assert_int_equal(cfg.hub_keepalive_s, 10);
    assert_int_equal(cfg.n_labels, 0);
    const char *text = "hub:\n  broker: tcp://127.0.0.1:1883\n  heartbeatSeconds: 5\n"
                       "  keepaliveSeconds: 30\nlabels: {site: north, example.com/rack: \"7\"}\n";
    assert_int_equal(parse(text, &cfg, &err), DRV_OK);
    assert_string_equal(cfg.hub_broker, "tcp://127.0.0.1:1883");
    assert_int_equal(cfg.hub_heartbeat_s, 5);
    assert_int_equal(cfg.hub_keepalive_s, 30);
    assert_int_equal(cfg.n_labels, 2);
    assert_string_equal(cfg.labels[0].key, "site");
    assert_string_equal(cfg.labels[0].value, "north");
    assert_string_equal(cfg.labels[1].key, "example.com/rack");
    assert_string_equal(cfg.labels[1].value, "7");

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"hub: tcp://x:1\n", "agent.yaml: hub: must be a mapping"},
        {"hub: {brokr: tcp://x:1}\n", "agent.yaml: hub.brokr: unknown key"},
        {"hub: {broker: 1883}\n", "agent.yaml: hub.broker: must be a string"},
        {"hub: {broker: \"http://x:1\"}\n", "hub.broker: \"http://x:1\" must be tcp://HOST:PORT"},
        {"hub: {broker: \"tcp://x\"}\n", "hub.broker: \"tcp://x\" must be tcp://HOST:PORT"},
        {"hub: {broker: \"tcp://x:99999\"}\n", "must be tcp://HOST:PORT"},
        {"hub: {heartbeatSeconds: 0}\n", "hub.heartbeatSeconds: must be a whole number from 1"},
        {"hub: {heartbeatSeconds: \"2\"}\n", "hub.heartbeatSeconds: must be a whole number"},
        {"hub: {keepaliveSeconds: 1.5}\n", "hub.keepaliveSeconds: must be a whole number from 2"},
        {"labels: [a, b]\n", "agent.yaml: labels: must be a mapping"},
        {"labels: {site: 3}\n", "labels.site: must be a string"},
        {"labels: {\"bad key!\": x}\n", "labels.bad key!: not a valid label name"},
        {"labels: {site: \"no spaces\"}\n", "labels.site: not a valid label value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drv_error_clear(&err);
        assert_int_equal(parse(bad[i].text, &cfg, &err), DRV_ERR_INVALID);
        if (!strstr(drv_error_msg(&err), bad[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].text, drv_error_msg(&err), bad[i].want);
    }
}

static void test_malformed_files(void **state)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(parse("a: [1, 2\n", &cfg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "agent.yaml: line"));
    drv_error_clear(&err);
    assert_int_equal(parse("- a list\n", &cfg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "one mapping"));
    drv_error_clear(&err);
    assert_int_equal(parse("a: 1\n---\nb: 2\n", &cfg, &err), DRV_ERR_INVALID);
    drv_error_clear(&err);
    assert_int_equal(drv_agent_config_load("/nonexistent/agent.yaml", &cfg, &err),
                     DRV_ERR_NOTFOUND);
}

/* registries in K3s's registries.yaml form: mirrors with endpoints and rewrites, configs' auth. */
static void test_registry_mirrors(void **state)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    const char *text =
        "registries:\n"
        "  mirrors:\n"
        "    docker.io:\n"
        "      endpoint: [\"http://127.0.0.1:5000\", \"https://mirror.example:8443/v2\"]\n"
        "    \"*\":\n"
        "      endpoint: [\"https://cache.example/\"]\n"
        "      rewrite:\n"
        "        \"^library/(.*)\": \"dockerhub/$1\"\n"
        "  configs:\n"
        "    mirror.example:8443:\n"
        "      auth: {username: bot, password: hunter2}\n";
    assert_int_equal(parse(text, &cfg, &err), DRV_OK);
    assert_int_equal(cfg.n_mirrors, 2);
    assert_string_equal(cfg.mirrors[0].registry, "docker.io");
    assert_int_equal(cfg.mirrors[0].n_endpoints, 2);
    assert_string_equal(cfg.mirrors[0].endpoints[0].host, "127.0.0.1:5000");
    assert_true(cfg.mirrors[0].endpoints[0].plain_http);
    assert_string_equal(cfg.mirrors[0].endpoints[1].host, "mirror.example:8443");
    assert_false(cfg.mirrors[0].endpoints[1].plain_http);
    assert_string_equal(cfg.mirrors[1].registry, "*");
    assert_int_equal(cfg.mirrors[1].n_rewrites, 1);
    assert_string_equal(cfg.mirrors[1].rewrites[0].pattern, "^library/(.*)");
    assert_string_equal(cfg.mirrors[1].rewrites[0].replace, "dockerhub/$1");
    const drv_registry_conf_t *r = drv_agent_config_registry(&cfg, "mirror.example:8443");
    assert_non_null(r);
    assert_string_equal(r->username, "bot");
    assert_string_equal(r->password, "hunter2");
    assert_false(r->insecure);

    /* The list form still works, and a later file's registries replace mirrors too. */
    assert_int_equal(parse("registries:\n- {host: \"h:5000\", insecure: true}\n", &cfg, &err),
                     DRV_OK);
    assert_int_equal(cfg.n_mirrors, 0);
    assert_int_equal(cfg.n_registries, 1);
}

/* The problems of one file, each expected line checked (a drv_error_t holds 1 KiB: a few
 * problems per file). */
static void expect_problems(const char *text, const char *const *want, size_t n)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(parse(text, &cfg, &err), DRV_ERR_INVALID);
    const char *m = drv_error_msg(&err);
    for (size_t i = 0; i < n; i++)
        if (!strstr(m, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], m);
    /* A bad file changes nothing. */
    assert_int_equal(cfg.n_mirrors, 0);
}

static void test_registry_mirror_problems(void **state)
{
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    const char *endpoints =
        "registries:\n"
        "  mirror: {}\n"
        "  mirrors:\n"
        "    docker.io:\n"
        "      endpoint: [\"127.0.0.1:5000\", \"http://h:5000/prefix\", \"http://h:99999\", 5]\n"
        "      rewrites: {}\n";
    const char *const want_endpoints[] = {
        "agent.yaml: registries.mirror: unknown key",
        "agent.yaml: registries.mirrors.docker.io.endpoint[0]: \"127.0.0.1:5000\" must start with "
        "http:// or https://",
        "agent.yaml: registries.mirrors.docker.io.endpoint[1]: \"http://h:5000/prefix\": a path "
        "after the host is not supported",
        "agent.yaml: registries.mirrors.docker.io.endpoint[2]: \"http://h:99999\": the host must "
        "be HOST[:PORT]",
        "agent.yaml: registries.mirrors.docker.io.endpoint[3]: must be a string",
        "agent.yaml: registries.mirrors.docker.io.rewrites: unknown key",
    };
    expect_problems(endpoints, want_endpoints, sizeof(want_endpoints) / sizeof(want_endpoints[0]));

    const char *rewrites = "registries:\n"
                           "  mirrors:\n"
                           "    \"bad/registry\":\n"
                           "      endpoint: [\"http://ok:5000\"]\n"
                           "    ghcr.io:\n"
                           "      endpoint: \"http://one:5000\"\n"
                           "      rewrite:\n"
                           "        \"^(unclosed\": \"x\"\n"
                           "        \"^a/(.*)\": \"b/$2\"\n"
                           "        \"^c/(.*)\": \"d/$x\"\n";
    const char *const want_rewrites[] = {
        "agent.yaml: registries.mirrors.bad/registry: must be a registry as in image references",
        "agent.yaml: registries.mirrors.ghcr.io.endpoint: must be a list of URLs",
        "agent.yaml: registries.mirrors.ghcr.io.rewrite.^(unclosed: \"^(unclosed\": not a regular "
        "expression",
        "agent.yaml: registries.mirrors.ghcr.io.rewrite.^a/(.*): \"b/$2\": group $2, the pattern "
        "has 1",
        "agent.yaml: registries.mirrors.ghcr.io.rewrite.^c/(.*): \"d/$x\": \"$\" must be followed",
    };
    expect_problems(rewrites, want_rewrites, sizeof(want_rewrites) / sizeof(want_rewrites[0]));

    const char *configs = "registries:\n"
                          "  mirrors: [docker.io]\n"
                          "  configs:\n"
                          "    reg.example:\n"
                          "      auth: {username: u}\n"
                          "      tls: {insecure_skip_verify: true}\n";
    const char *const want_configs[] = {
        "agent.yaml: registries.mirrors: must be a mapping of registries",
        "agent.yaml: registries.configs.reg.example.tls: not supported by Drover",
        "agent.yaml: registries.configs.reg.example.auth: username and password: both required",
    };
    expect_problems(configs, want_configs, sizeof(want_configs) / sizeof(want_configs[0]));

    /* Limits are named. */
    drv_buf_t big = DRV_BUF_INIT(4096);
    assert_int_equal(
        drv_buf_printf(&big, "registries:\n  mirrors:\n    docker.io:\n      endpoint:\n"), DRV_OK);
    for (int i = 0; i < DRV_MIRROR_MAX_ENDPOINTS + 1; i++)
        assert_int_equal(drv_buf_printf(&big, "      - http://m%d:5000\n", i), DRV_OK);
    assert_int_equal(parse(drv_buf_str(&big), &cfg, &err), DRV_ERR_INVALID);
    drv_buf_free(&big);
    assert_non_null(strstr(drv_error_msg(&err), "endpoint[4]: at most 4 endpoints"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_every_problem_named),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_hub_and_labels),
        cmocka_unit_test(test_network),
        cmocka_unit_test(test_storage),
        cmocka_unit_test(test_registry_mirrors),
        cmocka_unit_test(test_registry_mirror_problems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
