/* WireGuard module: the node key (creation, reload, mode, equality with `wg pubkey`, the RFC 7748
 * vector), the syncconf file for direct peers, relays and keep-alives, the strict parser of
 * `wg show dump` against hostile output, and apply/remove against fake ip, wg and wireguard-go
 * (shell scripts in a temporary directory that log their arguments): no root, no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/file.h"
#include "drover/proc.h"
#include "net/wg.h"

#define K1 "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define K2 "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
#define K3 "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="
#define K4 "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="
#define K5 "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU="

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drover-test-wg-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static char *read_file(const char *path)
{
    char *s = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, 1 << 20, &s, NULL, &err) != DRV_OK)
        fail_msg("read %s: %s", path, drv_error_msg(&err));
    return s;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_write_replace(path, text, strlen(text), mode, &err) != DRV_OK)
        fail_msg("write %s: %s", path, drv_error_msg(&err));
}

/* ---- keys ---- */

/* `wg pubkey` of the key file; false when wg is not installed. */
static bool wg_pubkey(const char *keyfile, char out[64])
{
    if (access("/usr/bin/wg", X_OK) != 0)
        return false;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "/usr/bin/wg pubkey < '%s'", keyfile);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, 64, f));
    assert_int_equal(pclose(f), 0);
    out[strcspn(out, "\n")] = '\0';
    return true;
}

static void test_key_create_reload(void **state)
{
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/identity", tmpdir);
    snprintf(path, sizeof(path), "%s/wireguard.key", dir);
    char pub1[DRV_NET_KEY_LEN + 1], pub2[DRV_NET_KEY_LEN + 1];
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_key_load_or_create(dir, pub1, &err), DRV_OK);
    assert_int_equal(strlen(pub1), DRV_NET_KEY_LEN);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, DRV_NET_KEY_LEN + 1);
    char *text = read_file(path);
    assert_int_equal(text[DRV_NET_KEY_LEN], '\n');
    assert_string_not_equal(text, pub1);
    free(text);

    /* Reload: the same key, the file untouched. */
    assert_int_equal(drv_wg_key_load_or_create(dir, pub2, &err), DRV_OK);
    assert_string_equal(pub1, pub2);
    struct stat st2;
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);

    char want[64];
    if (wg_pubkey(path, want))
        assert_string_equal(want, pub1);
    else
        print_message("wg missing: public key not compared with `wg pubkey`\n");

    /* A loosened mode is repaired. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(drv_wg_key_load_or_create(dir, pub2, &err), DRV_OK);
    assert_string_equal(pub1, pub2);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A corrupt file goes aside and a new key is made. */
    write_file(path, "not a key\n", 0600);
    assert_int_equal(drv_wg_key_load_or_create(dir, pub2, &err), DRV_OK);
    assert_string_not_equal(pub1, pub2);
    char bad[420];
    snprintf(bad, sizeof(bad), "%s.bad", path);
    assert_int_equal(access(bad, F_OK), 0);
    if (wg_pubkey(path, want))
        assert_string_equal(want, pub2);
}

static void test_key_wg_genkey(void **state)
{
    /* A key made by `wg genkey` (unclamped bytes are clamped as wg does) gives wg's public key. */
    if (access("/usr/bin/wg", X_OK) != 0) {
        print_message("wg missing: skipped\n");
        return;
    }
    char dir[300], path[400], want[64], pub[DRV_NET_KEY_LEN + 1];
    snprintf(dir, sizeof(dir), "%s/genkey", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/wireguard.key", dir);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "umask 077; /usr/bin/wg genkey > '%s'", path);
    assert_int_equal(system(cmd), 0);
    assert_true(wg_pubkey(path, want));
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_key_load_or_create(dir, pub, &err), DRV_OK);
    assert_string_equal(pub, want);
    /* And unclamped bytes too: wg clamps before it multiplies. */
    char pub5[DRV_NET_KEY_LEN + 1];
    write_file(path, K5 "\n", 0600);
    assert_true(wg_pubkey(path, want));
    assert_int_equal(drv_wg_key_public(K5, pub5, &err), DRV_OK);
    assert_string_equal(pub5, want);
}

static void test_key_rfc7748(void **state)
{
    /* RFC 7748 section 6.1, Alice's key pair. */
    char pub[DRV_NET_KEY_LEN + 1];
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_key_public("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", pub, &err),
                     DRV_OK);
    assert_string_equal(pub, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    assert_int_equal(drv_wg_key_public("short", pub, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_wg_key_public("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==", pub, &err),
                     DRV_ERR_INVALID);
    assert_int_equal(drv_wg_key_load_or_create("relative/dir", pub, &err), DRV_ERR_INVALID);
}

/* ---- the syncconf file ---- */

static drv_net_peer_t peers[4];

/* This node 10.42.1.0/24; B direct (endpoint), R a relay (endpoint), C behind NAT through R,
 * D behind NAT without a relay (it calls us). */
static drv_netstate_t sample(void)
{
    memset(peers, 0, sizeof(peers));
    snprintf(peers[0].node, sizeof(peers[0].node), "b");
    snprintf(peers[0].public_key, sizeof(peers[0].public_key), K2);
    peers[0].pod_cidr = (drv_net_cidr_t){0x0a2a0200, 24};
    snprintf(peers[0].endpoint, sizeof(peers[0].endpoint), "192.168.1.20:51820");
    snprintf(peers[1].node, sizeof(peers[1].node), "c");
    snprintf(peers[1].public_key, sizeof(peers[1].public_key), K3);
    peers[1].pod_cidr = (drv_net_cidr_t){0x0a2a0300, 24};
    snprintf(peers[1].via, sizeof(peers[1].via), "r");
    snprintf(peers[2].node, sizeof(peers[2].node), "r");
    snprintf(peers[2].public_key, sizeof(peers[2].public_key), K4);
    peers[2].pod_cidr = (drv_net_cidr_t){0x0a2a0400, 24};
    snprintf(peers[2].endpoint, sizeof(peers[2].endpoint), "203.0.113.5:51821");
    peers[2].relay = true;
    snprintf(peers[3].node, sizeof(peers[3].node), "d");
    snprintf(peers[3].public_key, sizeof(peers[3].public_key), K5);
    peers[3].pod_cidr = (drv_net_cidr_t){0x0a2a0500, 24};
    drv_netstate_t ns = {0};
    ns.present = true;
    snprintf(ns.node, sizeof(ns.node), "a");
    ns.pod_cidr = (drv_net_cidr_t){0x0a2a0100, 24};
    ns.cluster_cidr = (drv_net_cidr_t){0x0a2a0000, 16};
    ns.service_cidr = (drv_net_cidr_t){0x0a2b0000, 16};
    ns.listen_port = 51820;
    ns.mtu = 1380;
    ns.keepalive_s = 25;
    ns.peers = peers;
    ns.npeers = 4;
    return ns;
}

static void test_render(void **state)
{
    drv_netstate_t ns = sample();
    drv_wg_opts_t o = {0};
    drv_buf_t out = DRV_BUF_INIT(1 << 16);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_render(&o, &ns, K1, &out, &err), DRV_OK);
    assert_string_equal(drv_buf_str(&out), "[Interface]\n"
                                           "PrivateKey = " K1 "\n"
                                           "ListenPort = 51820\n"
                                           "\n[Peer]\n"
                                           "PublicKey = " K2 "\n"
                                           "AllowedIPs = 10.42.2.0/24\n"
                                           "Endpoint = 192.168.1.20:51820\n"
                                           "\n[Peer]\n"
                                           "PublicKey = " K4 "\n"
                                           "AllowedIPs = 10.42.4.0/24, 10.42.3.0/24\n"
                                           "Endpoint = 203.0.113.5:51821\n"
                                           "\n[Peer]\n"
                                           "PublicKey = " K5 "\n"
                                           "AllowedIPs = 10.42.5.0/24\n"
                                           "PersistentKeepalive = 25\n");
    /* Behind NAT: keep-alives toward every peer. */
    drv_buf_reset(&out);
    o.behind_nat = true;
    assert_int_equal(drv_wg_render(&o, &ns, K1, &out, &err), DRV_OK);
    const char *s = drv_buf_str(&out);
    int n = 0;
    for (const char *p = s; (p = strstr(p, "PersistentKeepalive = 25\n")) != NULL; p++)
        n++;
    assert_int_equal(n, 3);
    /* Keep-alives off. */
    drv_buf_reset(&out);
    ns.keepalive_s = 0;
    assert_int_equal(drv_wg_render(&o, &ns, K1, &out, &err), DRV_OK);
    assert_null(strstr(drv_buf_str(&out), "PersistentKeepalive"));
    drv_buf_free(&out);
}

static void expect_render_error(drv_netstate_t *ns, const char *priv, const char *want)
{
    drv_wg_opts_t o = {0};
    drv_buf_t out = DRV_BUF_INIT(1 << 16);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_render(&o, ns, priv, &out, &err), DRV_ERR_INVALID);
    if (strstr(drv_error_msg(&err), want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", drv_error_msg(&err), want);
    assert_int_equal(out.len, 0);
    drv_buf_free(&out);
}

static void test_render_hostile(void **state)
{
    drv_netstate_t ns = sample();
    expect_render_error(&ns, "nope", "private key");
    snprintf(peers[0].public_key, sizeof(peers[0].public_key), "%s", K2);
    peers[0].public_key[10] = '\n';
    expect_render_error(&ns, K1, "network.peers[0].publicKey");
    ns = sample();
    snprintf(peers[0].endpoint, sizeof(peers[0].endpoint), "1.2.3.4:5\n[Peer]");
    expect_render_error(&ns, K1, "network.peers[0].endpoint");
    ns = sample();
    snprintf(peers[1].via, sizeof(peers[1].via), "nobody");
    expect_render_error(&ns, K1, "network.peers[1].via");
    ns = sample();
    snprintf(peers[2].via, sizeof(peers[2].via), "b"); /* c via r, r via b */
    expect_render_error(&ns, K1, "itself reached through a relay");
    ns = sample();
    peers[3].pod_cidr = (drv_net_cidr_t){0x0a2b0500, 24};
    expect_render_error(&ns, K1, "network.peers[3].podCIDR");
    ns = sample();
    ns.pod_cidr.addr |= 1;
    expect_render_error(&ns, K1, "network.podCIDR");
    ns = sample();
    ns.present = false;
    expect_render_error(&ns, K1, "no network section");
}

/* ---- wg show dump ---- */

#define DUMP_IF K1 "\t" K2 "\t51820\toff\n"

static void test_dump_parse(void **state)
{
    const char *text =
        DUMP_IF K3 "\t(none)\t192.168.1.20:51820\t10.42.2.0/24\t1700000000\t1234\t"
                   "5678\toff\n" K4 "\t" K5 "\t(none)\t10.42.3.0/24,10.42.4.0/24\t0\t0\t0\t25\n";
    drv_wg_peer_stat_t *p = NULL;
    size_t n = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_dump_parse(text, &p, &n, &err), DRV_OK);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].public_key, K3);
    assert_string_equal(p[0].endpoint, "192.168.1.20:51820");
    assert_int_equal(p[0].latest_handshake, 1700000000);
    assert_int_equal(p[0].rx_bytes, 1234);
    assert_int_equal(p[0].tx_bytes, 5678);
    assert_int_equal(p[0].keepalive_s, 0);
    assert_int_equal(drv_wg_handshake_age(&p[0], 1700000030), 30);
    assert_string_equal(p[1].endpoint, "");
    assert_int_equal(p[1].keepalive_s, 25);
    assert_int_equal(drv_wg_handshake_age(&p[1], 1700000030), -1);
    free(p);

    /* No peers. */
    p = NULL;
    assert_int_equal(drv_wg_dump_parse(DUMP_IF, &p, &n, &err), DRV_OK);
    assert_int_equal(n, 0);
    free(p);
}

static void expect_dump_error(const char *text, const char *want)
{
    drv_wg_peer_stat_t *p = (drv_wg_peer_stat_t *)0x1;
    size_t n = 99;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_not_equal(drv_wg_dump_parse(text, &p, &n, &err), DRV_OK);
    if (strstr(drv_error_msg(&err), want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", drv_error_msg(&err), want);
    /* The interface line's private key never appears in a message. */
    assert_null(strstr(drv_error_msg(&err), K1));
    assert_ptr_equal(p, (drv_wg_peer_stat_t *)0x1);
    assert_int_equal(n, 99);
}

static void test_dump_hostile(void **state)
{
    expect_dump_error("", "newline");
    expect_dump_error(DUMP_IF "x", "newline");
    expect_dump_error(K1 "\t" K2 "\t51820\n", "line 1 (interface): 3 fields");
    expect_dump_error(K1 "\t" K2 "\t51820\toff\textra\n", "line 1 (interface): 5 fields");
    expect_dump_error(K1 "\tnotakey\t51820\toff\n", "line 1 (interface): public key");
    expect_dump_error(K1 "\t" K2 "\t70000\toff\n", "listen port");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t0\t0\toff\textra\n",
                      "line 2: more than 8 fields");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t0\t0\n", "line 2: fewer than 8");
    expect_dump_error(DUMP_IF "AAAA\t(none)\t(none)\t(none)\t0\t0\t0\toff\n", "line 2: bad public");
    expect_dump_error(DUMP_IF K3 "\tzz\t(none)\t(none)\t0\t0\t0\toff\n", "bad preshared");
    expect_dump_error(DUMP_IF K3 "\t(none)\t1.2.3.4\t(none)\t0\t0\t0\toff\n", "bad endpoint");
    expect_dump_error(DUMP_IF K3 "\t(none)\t1.2.3.4:1 x\t(none)\t0\t0\t0\toff\n", "bad endpoint");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t10.0.0.0/8;rm\t0\t0\t0\toff\n", "allowed");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t-1\t0\t0\toff\n", "latest handshake");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t99999999999999999999999\t0\toff\n",
                      "transfer rx");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t0\t1e3\toff\n", "transfer tx");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t0\t0\t0\n", "keepalive");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t0\t0\toff\n\n", "line 3");
    expect_dump_error(DUMP_IF K3 "\t(none)\t(none)\t(none)\t0\t0\t0\toff\r\n", "keepalive");
}

/* ---- apply and remove against fake tools ---- */

static char fakedir[300], logpath[400], confcopy[400], sysctl[400];

static void fake_tool(const char *name, const char *body)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", fakedir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\nPATH=/usr/bin:/bin\nLOG='%s'\nSTATE='%s'\n"
            "echo \"%s $*\" >> \"$LOG\"\n%s\n",
            logpath, fakedir, name, body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

/* ip: "link add ... wireguard" fails like a kernel without the module; "link show" reports the
 * device once wireguard-go made it; "route show dev" lists a stale route. */
static const char *fake_ip =
    "case \"$*\" in\n"
    "'link add '*' type wireguard') echo 'Error: Unknown device type.' >&2; exit 2;;\n"
    "'-d -o link show dev '*) [ -e \"$STATE/up\" ] || { echo 'Device does not exist.' >&2; "
    "exit 1; }\n"
    "  echo \"9: $6: <POINTOPOINT,UP> mtu 1380 qdisc fq state UNKNOWN mode DEFAULT\\    tun type "
    "tun pi off\";;\n"
    "'-o route show dev '*) echo '10.42.2.0/24 proto 156 scope link '; echo '10.42.9.0/24 proto "
    "156 scope link ';;\n"
    "'-o route show type blackhole proto 156') echo 'blackhole 10.42.0.0/16 metric 4000 '; echo "
    "'blackhole 10.99.0.0/16 metric 4000 ';;\n"
    "'link del dev '*) rm -f \"$STATE/up\";;\n"
    "esac\nexit 0";

static void fakes_setup(bool with_wggo)
{
    snprintf(fakedir, sizeof(fakedir), "%s/fake%d", tmpdir, with_wggo);
    mkdir(fakedir, 0700);
    snprintf(logpath, sizeof(logpath), "%s/log", fakedir);
    snprintf(confcopy, sizeof(confcopy), "%s/conf.copy", fakedir);
    snprintf(sysctl, sizeof(sysctl), "%s/ip_forward", fakedir);
    write_file(sysctl, "0\n", 0644);
    unlink(logpath);
    fake_tool("ip", fake_ip);
    char wg[1200];
    snprintf(wg, sizeof(wg),
             "case \"$1\" in syncconf) stat -c %%a \"$3\" > '%s.mode'; cat \"$3\" > '%s';; "
             "show) echo '" DUMP_IF "' | head -c -1;; esac",
             confcopy, confcopy);
    fake_tool("wg", wg);
    if (with_wggo)
        fake_tool("wireguard-go", "touch \"$STATE/up\"");
}

static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("\"%s\"\ndoes not start with\n\"%s\"", s, prefix);
}

static void test_apply_userspace(void **state)
{
    fakes_setup(true);
    char idir[300], rdir[300];
    snprintf(idir, sizeof(idir), "%s/identity", tmpdir);
    snprintf(rdir, sizeof(rdir), "%s/run", tmpdir);
    drv_wg_opts_t o = {.ifname = "wg-test",
                       .identity_dir = idir,
                       .run_dir = rdir,
                       .tool_path = fakedir,
                       .sysctl_path = sysctl};
    drv_netstate_t ns = sample();
    drv_wg_state_t st;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_wg_apply(&o, &ns, &st, &err) != DRV_OK)
        fail_msg("apply: %s", drv_error_msg(&err));
    assert_int_equal(st.impl, DRV_WG_IMPL_USERSPACE);
    assert_string_equal(drv_wg_impl_name(st.impl), "userspace");
    assert_true(st.created);
    assert_int_equal(st.npeers, 3);
    assert_int_equal(st.nroutes, 4);
    char pub[DRV_NET_KEY_LEN + 1];
    assert_int_equal(drv_wg_key_load_or_create(idir, pub, &err), DRV_OK);
    assert_string_equal(st.public_key, pub);

    char *log = read_file(logpath);
    assert_prefix(log, "ip route replace blackhole 10.42.0.0/16 metric 4000 proto 156\n"
                       "ip -o route show type blackhole proto 156\n"
                       "ip route del blackhole 10.99.0.0/16 proto 156\n"
                       "ip -d -o link show dev wg-test\n"
                       "ip link add wg-test type wireguard\n"
                       "wireguard-go wg-test\n"
                       "ip -d -o link show dev wg-test\n"
                       "ip addr replace 10.42.1.0/32 dev wg-test\n"
                       "wg syncconf wg-test " /* path checked below */);
    const char *rest = strstr(log, "/wg-test.conf\n");
    assert_non_null(rest);
    assert_string_equal(rest, "/wg-test.conf\n"
                              "ip link set dev wg-test mtu 1380\n"
                              "ip link set dev wg-test up\n"
                              "ip route replace 10.42.2.0/24 dev wg-test proto 156\n"
                              "ip route replace 10.42.3.0/24 dev wg-test proto 156\n"
                              "ip route replace 10.42.4.0/24 dev wg-test proto 156\n"
                              "ip route replace 10.42.5.0/24 dev wg-test proto 156\n"
                              "ip -o route show dev wg-test\n"
                              "ip route del 10.42.9.0/24 dev wg-test\n");
    free(log);

    /* wg got the rendered file, mode 0600; it is gone afterwards. */
    char *conf = read_file(confcopy);
    assert_non_null(strstr(conf, "PublicKey = " K4 "\nAllowedIPs = 10.42.4.0/24, 10.42.3.0/24\n"));
    free(conf);
    char modepath[420];
    snprintf(modepath, sizeof(modepath), "%s.mode", confcopy);
    char *mode = read_file(modepath);
    assert_string_equal(mode, "600\n");
    free(mode);
    char confpath[400];
    snprintf(confpath, sizeof(confpath), "%s/wg-test.conf", rdir);
    assert_int_not_equal(access(confpath, F_OK), 0);
    char *fwd = read_file(sysctl);
    assert_string_equal(fwd, "1\n");
    free(fwd);

    /* Again: the interface exists, nothing is created. */
    unlink(logpath);
    assert_int_equal(drv_wg_apply(&o, &ns, &st, &err), DRV_OK);
    assert_false(st.created);
    assert_int_equal(st.impl, DRV_WG_IMPL_USERSPACE);
    log = read_file(logpath);
    assert_null(strstr(log, "wireguard-go"));
    assert_null(strstr(log, "link add"));
    free(log);

    /* Handshakes read through wg show dump. */
    drv_wg_peer_stat_t *p = NULL;
    size_t n = 9;
    assert_int_equal(drv_wg_handshakes(&o, &p, &n, &err), DRV_OK);
    assert_int_equal(n, 0);
    free(p);

    /* Remove: the device and every route of ours. */
    unlink(logpath);
    assert_int_equal(drv_wg_remove(&o, &err), DRV_OK);
    log = read_file(logpath);
    assert_string_equal(log, "ip -d -o link show dev wg-test\n"
                             "ip link del dev wg-test\n"
                             "ip route flush proto 156\n");
    free(log);
}

static void test_apply_no_wireguard(void **state)
{
    fakes_setup(false);
    char idir[300], rdir[300];
    snprintf(idir, sizeof(idir), "%s/identity", tmpdir);
    snprintf(rdir, sizeof(rdir), "%s/run", tmpdir);
    drv_wg_opts_t o = {
        .identity_dir = idir, .run_dir = rdir, .tool_path = fakedir, .sysctl_path = sysctl};
    drv_netstate_t ns = sample();
    drv_wg_state_t st = {.npeers = 77};
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_wg_apply(&o, &ns, &st, &err), DRV_ERR_UNSUPPORTED);
    const char *m = drv_error_msg(&err);
    if (strstr(m, "Unknown device type") == NULL ||
        strstr(m, "wireguard-go is not installed") == NULL)
        fail_msg("message: %s", m);
    assert_int_equal(st.npeers, 77);
    /* The blackhole went in before anything else. */
    char *log = read_file(logpath);
    assert_true(strncmp(log, "ip route replace blackhole 10.42.0.0/16", 39) == 0);
    free(log);

    /* Bad options are refused by name. */
    o.ifname = "this-name-is-too-long";
    assert_int_equal(drv_wg_apply(&o, &ns, &st, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "wireguard.interface"));
    o.ifname = NULL;
    o.run_dir = "run";
    assert_int_equal(drv_wg_apply(&o, &ns, &st, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "run directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_create_reload),  cmocka_unit_test(test_key_wg_genkey),
        cmocka_unit_test(test_key_rfc7748),        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_hostile),     cmocka_unit_test(test_dump_parse),
        cmocka_unit_test(test_dump_hostile),       cmocka_unit_test(test_apply_userspace),
        cmocka_unit_test(test_apply_no_wireguard),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
