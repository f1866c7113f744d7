/* Node name patterns: filled from a fake device root ({serial} from the device tree, the
 * firmware's device tree, /proc/cpuinfo or /etc/machine-id; {hostname}; {mac}), sanitized to
 * a DNS label, kept in <stateDir>/node-name.json so that it never changes, a corrupt state
 * file moved aside, errors naming nodeName. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/nodename.h"
#include "drover/file.h"

typedef struct {
    char root[256];
} fx_t;

static void put(const fx_t *fx, const char *rel, const char *data, size_t len)
{
    char path[512], dir[512];
    snprintf(path, sizeof(path), "%s%s", fx->root, rel);
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(drv_file_mkdir_p(dir, 0755, NULL), DRV_OK);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void puts_(const fx_t *fx, const char *rel, const char *text)
{
    put(fx, rel, text, strlen(text));
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    snprintf(fx->root, sizeof(fx->root), "/tmp/drover-nodename.XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static drv_err_t fill(const fx_t *fx, const char *pattern, char *out, drv_error_t *err)
{
    char src[256];
    return drv_nodename_fill(pattern, fx->root, out, 64, src, sizeof(src), err);
}

static void test_serial_sources(void **state)
{
    fx_t *fx = *state;
    char name[64];
    drv_error_t err = DRV_ERROR_INIT;
    /* Nothing at all: the error names the field and where it looked. */
    assert_int_equal(fill(fx, "pi-{serial}", name, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "nodeName: \"pi-{serial}\": no serial number"));
    assert_non_null(strstr(drv_error_msg(&err), "/etc/machine-id"));
    /* machine-id last; an uninitialized one is no serial. */
    puts_(fx, "/etc/machine-id", "uninitialized\n");
    assert_int_equal(fill(fx, "pi-{serial}", name, &err), DRV_ERR_NOTFOUND);
    puts_(fx, "/etc/machine-id", "0123456789ABCDEF0123456789abcdef\n");
    assert_int_equal(fill(fx, "pi-{serial}", name, &err), DRV_OK);
    assert_string_equal(name, "pi-0123456789abcdef0123456789abcdef");
    /* /proc/cpuinfo's Serial line before it; an all-zero serial is skipped. */
    puts_(fx, "/proc/cpuinfo", "processor\t: 0\nSerial\t\t: 0000000000000000\nModel\t: Pi\n");
    assert_int_equal(fill(fx, "pi-{serial}", name, &err), DRV_OK);
    assert_string_equal(name, "pi-0123456789abcdef0123456789abcdef");
    puts_(fx, "/proc/cpuinfo",
          "processor\t: 0\nHardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: "
          "10000000A1B2C3D4\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n");
    assert_int_equal(fill(fx, "pi-{serial}", name, &err), DRV_OK);
    assert_string_equal(name, "pi-10000000a1b2c3d4");
    /* The firmware's device tree before it, the kernel's /proc/device-tree first (NUL-ended). */
    put(fx, "/sys/firmware/devicetree/base/serial-number", "20000000beefcafe\0", 17);
    assert_int_equal(fill(fx, "pi-{serial}", name, &err), DRV_OK);
    assert_string_equal(name, "pi-20000000beefcafe");
    put(fx, "/proc/device-tree/serial-number", "3000-0000_ABCD\0", 15);
    assert_int_equal(fill(fx, "{serial}.edge", name, &err), DRV_OK);
    assert_string_equal(name, "3000-0000-abcd.edge");
}

static void test_hostname_mac(void **state)
{
    fx_t *fx = *state;
    char name[64];
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(fill(fx, "{hostname}", name, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "nodeName: \"{hostname}\": no host name"));
    puts_(fx, "/proc/sys/kernel/hostname", "RaspberryPi_4.local\n");
    assert_int_equal(fill(fx, "{hostname}", name, &err), DRV_OK);
    assert_string_equal(name, "raspberrypi-4");
    assert_int_equal(fill(fx, "node-{mac}", name, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "no physical network interface"));
    /* A bridge (no device link) and an all-zero address are skipped; by name, eth0 first. */
    puts_(fx, "/sys/class/net/br0/address", "02:42:ac:11:00:01\n");
    puts_(fx, "/sys/class/net/wlan0/address", "DC:A6:32:00:00:02\n");
    puts_(fx, "/sys/class/net/wlan0/device/uevent", "x\n");
    puts_(fx, "/sys/class/net/dummy0/address", "00:00:00:00:00:00\n");
    puts_(fx, "/sys/class/net/dummy0/device/uevent", "x\n");
    assert_int_equal(fill(fx, "node-{mac}", name, &err), DRV_OK);
    assert_string_equal(name, "node-dca632000002");
    puts_(fx, "/sys/class/net/eth0/address", "dc:a6:32:00:00:01\n");
    puts_(fx, "/sys/class/net/eth0/device/uevent", "x\n");
    assert_int_equal(fill(fx, "{hostname}-{mac}", name, &err), DRV_OK);
    assert_string_equal(name, "raspberrypi-4-dca632000001");
}

static void test_too_long_or_invalid(void **state)
{
    fx_t *fx = *state;
    char name[64];
    drv_error_t err = DRV_ERROR_INIT;
    puts_(fx, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    assert_int_equal(fill(fx, "a-rather-long-site-prefix-for-this-fleet-{serial}", name, &err),
                     DRV_ERR_RANGE);
    assert_non_null(strstr(drv_error_msg(&err), "nodeName: \"a-rather-long-site-prefix"));
    assert_non_null(strstr(drv_error_msg(&err), "(73 characters): a node name has at most 63"));
    assert_int_equal(fill(fx, "pi-{uuid}", name, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "nodeName: \"pi-{uuid}\" is not a valid node "
                                                "name pattern: unknown placeholder '{uuid}'"));
}

static void cfg_for(const fx_t *fx, const char *pattern, drv_agent_config_t *cfg)
{
    drv_agent_config_defaults(cfg);
    char text[512];
    snprintf(text, sizeof(text), "nodeName: \"%s\"\nstateDir: %s/var/lib/drover\n", pattern,
             fx->root);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_agent_config_parse("agent.yaml", text, strlen(text), cfg, &err), DRV_OK);
    assert_string_equal(cfg->node_name_pattern, pattern);
    assert_string_equal(cfg->node_name, "");
}

static void test_resolve_persists(void **state)
{
    fx_t *fx = *state;
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    char path[512];
    snprintf(path, sizeof(path), "%s/var/lib/drover/node-name.json", fx->root);

    /* A literal name: nothing to do, nothing written. */
    drv_agent_config_defaults(&cfg);
    snprintf(cfg.node_name, sizeof(cfg.node_name), "pi-07");
    assert_int_equal(drv_nodename_resolve(&cfg, fx->root, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "pi-07");

    cfg_for(fx, "pi-{serial}", &cfg);
    assert_int_equal(drv_nodename_resolve(&cfg, fx->root, &err), DRV_ERR_NOTFOUND);
    assert_non_null(strstr(drv_error_msg(&err), "nodeName: \"pi-{serial}\""));
    assert_int_equal(access(path, F_OK), -1);

    puts_(fx, "/proc/cpuinfo", "Serial\t\t: 10000000a1b2c3d4\n");
    assert_int_equal(drv_nodename_resolve(&cfg, fx->root, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "pi-10000000a1b2c3d4");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(drv_file_read_capped(path, 4096, &text, &len, NULL), DRV_OK);
    assert_string_equal(text, "{\"version\":1,\"pattern\":\"pi-{serial}\",\"nodeName\":\"pi-"
                              "10000000a1b2c3d4\",\"source\":\"/proc/cpuinfo Serial\"}\n");
    free(text);

    /* The device now answers otherwise (a firmware update, a moved card): the name stays. */
    put(fx, "/proc/device-tree/serial-number", "99999999\0", 9);
    cfg_for(fx, "pi-{serial}", &cfg);
    assert_int_equal(drv_nodename_resolve(&cfg, fx->root, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "pi-10000000a1b2c3d4");

    /* A changed pattern is filled again. */
    cfg_for(fx, "edge-{serial}", &cfg);
    assert_int_equal(drv_nodename_resolve(&cfg, fx->root, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "edge-99999999");

    /* A corrupt file is moved aside and the name filled again. */
    puts_(fx, "/var/lib/drover/node-name.json", "{\"version\":1,\"pattern\":\"edge-{serial}\"");
    cfg_for(fx, "edge-{serial}", &cfg);
    assert_int_equal(drv_nodename_resolve(&cfg, fx->root, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "edge-99999999");
    char bad[600];
    snprintf(bad, sizeof(bad), "%s.bad", path);
    assert_int_equal(access(bad, F_OK), 0);
}

static void test_state_parse(void **state)
{
    (void)state;
    drv_nodename_state_t st;
    drv_error_t err = DRV_ERROR_INIT;
    const char *ok = "{\"version\":1,\"pattern\":\"pi-{serial}\",\"nodeName\":\"pi-1\"}";
    assert_int_equal(drv_nodename_state_parse(ok, strlen(ok), &st, &err), DRV_OK);
    assert_string_equal(st.node_name, "pi-1");
    assert_string_equal(st.source, "");
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"version\":2,\"pattern\":\"pi-{serial}\",\"nodeName\":\"pi-1\"}", "version: must be 1"},
        {"{\"version\":1,\"pattern\":\"pi-1\",\"nodeName\":\"pi-1\"}", "pattern:"},
        {"{\"version\":1,\"pattern\":\"pi-{x}\",\"nodeName\":\"pi-1\"}", "pattern:"},
        {"{\"version\":1,\"pattern\":\"pi-{serial}\",\"nodeName\":\"Pi_1\"}", "nodeName:"},
        {"{\"version\":1,\"pattern\":\"pi-{serial}\",\"nodeName\":\"pi-{serial}\"}", "nodeName:"},
        {"{\"version\":1,\"pattern\":\"pi-{serial}\",\"nodeName\":\"pi-1\",\"source\":3}",
         "source:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drv_error_clear(&err);
        assert_int_equal(drv_nodename_state_parse(bad[i].text, strlen(bad[i].text), &st, &err),
                         DRV_ERR_INVALID);
        assert_non_null(strstr(drv_error_msg(&err), bad[i].msg));
    }
}

static void test_config_pattern_errors(void **state)
{
    (void)state;
    drv_agent_config_t cfg;
    drv_error_t err = DRV_ERROR_INIT;
    drv_agent_config_defaults(&cfg);
    const char *text = "nodeName: \"pi-{serial\"\n";
    assert_int_equal(drv_agent_config_parse("agent.yaml", text, strlen(text), &cfg, &err),
                     DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "agent.yaml: nodeName: \"pi-{serial\" is not a "
                                                "valid node name pattern: '{' without its '}'"));
    text = "nodeName: pi-7\n";
    assert_int_equal(drv_agent_config_parse("agent.yaml", text, strlen(text), &cfg, &err), DRV_OK);
    assert_string_equal(cfg.node_name, "pi-7");
    assert_string_equal(cfg.node_name_pattern, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_serial_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_long_or_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_persists, setup, teardown),
        cmocka_unit_test(test_state_parse),
        cmocka_unit_test(test_config_pattern_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
