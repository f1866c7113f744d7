/* WireGuard for the pod network: the node's X25519 key (mbedTLS Curve25519), the interface
 * made and configured from the netstate through ip(8), wg(8) and wireguard-go, and the peers'
 * state read back from `wg show dump`. See wg.h for the contract of each call. */
#include "net/wg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/pki.h"
#include "drover/proc.h"

#define WG_KEY_BYTES 32
#define WG_KEY_FILE_MAX 256            /* a key file is 45 bytes; anything much larger is not one */
#define WG_TOOL_OUT_MAX (256u * 1024u) /* ip's route and link listings */
#define WG_TOOL_ERR_MAX 2048u
/* One dump line is under 300 bytes; the maximum of peers the netstate allows, twice over. */
#define WG_DUMP_MAX ((size_t)DRV_NET_PEERS_MAX * 2 * 320)
#define WG_DUMP_PEERS_MAX (DRV_NET_PEERS_MAX * 2)
#define WG_CONF_MAX ((size_t)DRV_NET_PEERS_MAX * 256 + 1024)
#define WG_MTU_MIN 576
#define WG_TIMEOUT_MAX_MS 120000u

/* The options with the defaults filled in. */
typedef struct wg_ctx {
    const char *ifname;
    const char *tool_path;
    const char *sysctl_path;
    unsigned timeout_ms;
} wg_ctx_t;

const char *drv_wg_impl_name(drv_wg_impl_t impl)
{
    switch (impl) {
    case DRV_WG_IMPL_KERNEL:
        return "kernel";
    case DRV_WG_IMPL_USERSPACE:
        return "userspace";
    default:
        return "none";
    }
}

/* ---- Keys ---- */

static void wipe_buf(drv_buf_t *b)
{
    if (b->data != NULL)
        mbedtls_platform_zeroize(b->data, b->cap);
    drv_buf_free(b);
}

static int wg_rng(void *p, unsigned char *out, size_t n)
{
    (void)p;
    drv_error_t e = DRV_ERROR_INIT;
    return drv_pki_random(out, n, &e) == DRV_OK ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

/* X25519(priv, 9) with WireGuard's clamping (RFC 7748 decodeScalar25519). */
static drv_err_t x25519_public(const unsigned char priv[WG_KEY_BYTES],
                               unsigned char pub[WG_KEY_BYTES], drv_error_t *err)
{
    unsigned char k[WG_KEY_BYTES];
    memcpy(k, priv, sizeof(k));
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    mbedtls_ecp_group grp;
    mbedtls_mpi d;
    mbedtls_ecp_point q;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_ecp_point_init(&q);
    int rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_CURVE25519);
    if (rc == 0)
        rc = mbedtls_mpi_read_binary_le(&d, k, sizeof(k));
    if (rc == 0)
        rc = mbedtls_ecp_mul(&grp, &q, &d, &grp.G, wg_rng, NULL);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary_le(&q.X, pub, WG_KEY_BYTES);
    mbedtls_platform_zeroize(k, sizeof(k));
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    if (rc != 0)
        return drv_error_set(err, DRV_ERR_IO, 0, "wireguard key: X25519 failed (mbedtls -0x%04x)",
                             (unsigned)-rc);
    return DRV_OK;
}

/* Decodes a 44-character base64 key into 32 bytes; false if it is not one. */
static bool key_decode(const char *s, size_t len, unsigned char out[WG_KEY_BYTES])
{
    if (len != DRV_NET_KEY_LEN || s[DRV_NET_KEY_LEN - 1] != '=')
        return false;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (drv_base64_decode(s, len, &raw, &n) != DRV_OK)
        return false;
    bool ok = n == WG_KEY_BYTES;
    if (ok)
        memcpy(out, raw, WG_KEY_BYTES);
    drv_pki_wipe_free(raw, n + 1);
    return ok;
}

static bool key_valid(const char *s)
{
    unsigned char k[WG_KEY_BYTES];
    bool ok = s != NULL && key_decode(s, strlen(s), k);
    mbedtls_platform_zeroize(k, sizeof(k));
    return ok;
}

static drv_err_t key_encode(const unsigned char k[WG_KEY_BYTES], char out[DRV_NET_KEY_LEN + 1],
                            drv_error_t *err)
{
    char *b = drv_base64_encode(k, WG_KEY_BYTES);
    if (b == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "wireguard key: out of memory");
    memcpy(out, b, DRV_NET_KEY_LEN + 1);
    drv_pki_secret_free(b);
    return DRV_OK;
}

drv_err_t drv_wg_key_public(const char *priv_b64, char pub[DRV_NET_KEY_LEN + 1], drv_error_t *err)
{
    unsigned char k[WG_KEY_BYTES], p[WG_KEY_BYTES];
    if (priv_b64 == NULL || !key_decode(priv_b64, strlen(priv_b64), k))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "wireguard key: not 32 bytes of base64 (44 characters)");
    drv_err_t rc = x25519_public(k, p, err);
    mbedtls_platform_zeroize(k, sizeof(k));
    if (rc == DRV_OK)
        rc = key_encode(p, pub, err);
    return rc;
}

/* Loads (or makes) the private key: priv gets its base64 text, pub the public key's. */
static drv_err_t key_load(const char *identity_dir, char priv[DRV_NET_KEY_LEN + 1],
                          char pub[DRV_NET_KEY_LEN + 1], drv_error_t *err)
{
    if (identity_dir == NULL || identity_dir[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "wireguard key: the identity directory must be an absolute path");
    char path[PATH_MAX];
    if (drv_fmt(path, sizeof(path), "%s/%s", identity_dir, DRV_WG_KEY_FILE) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "wireguard key: path too long");

    char *text = NULL;
    size_t len = 0;
    drv_error_t rerr = DRV_ERROR_INIT;
    drv_err_t rc = drv_file_read_capped(path, WG_KEY_FILE_MAX, &text, &len, &rerr);
    if (rc == DRV_OK) {
        size_t n = len;
        if (n > 0 && text[n - 1] == '\n')
            n--;
        unsigned char k[WG_KEY_BYTES], p[WG_KEY_BYTES];
        bool ok = key_decode(text, n, k);
        drv_pki_wipe_free(text, len + 1);
        if (ok) {
            rc = x25519_public(k, p, err);
            if (rc == DRV_OK)
                rc = key_encode(k, priv, err);
            mbedtls_platform_zeroize(k, sizeof(k));
            if (rc == DRV_OK)
                rc = key_encode(p, pub, err);
            if (rc != DRV_OK)
                return rc;
            /* Only the agent may read it: repair a mode someone loosened. */
            struct stat st;
            if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
                drv_log_warn("wireguard key file readable by others; setting mode 0600", "path=%s",
                             path);
                if (chmod(path, 0600) != 0)
                    return drv_error_set(err, drv_error_from_errno(errno), errno, "chmod %s", path);
            }
            return DRV_OK;
        }
        drv_error_t qerr = DRV_ERROR_INIT;
        if (drv_file_quarantine(path, &qerr) != DRV_OK)
            return drv_error_set(err, qerr.code, qerr.sys_errno,
                                 "wireguard key %s is corrupt and cannot be moved aside: %s", path,
                                 drv_error_msg(&qerr));
        drv_log_warn("wireguard key file corrupt: moved aside to .bad, making a new key "
                     "(peers learn it from the next status report)",
                     "path=%s", path);
    } else if (rc != DRV_ERR_NOTFOUND) {
        return drv_error_set(err, rerr.code, rerr.sys_errno, "wireguard key: %s",
                             drv_error_msg(&rerr));
    }

    unsigned char k[WG_KEY_BYTES], p[WG_KEY_BYTES];
    rc = drv_pki_random(k, sizeof(k), err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "wireguard key");
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    char line[DRV_NET_KEY_LEN + 2];
    rc = x25519_public(k, p, err);
    if (rc == DRV_OK)
        rc = key_encode(k, line, err);
    mbedtls_platform_zeroize(k, sizeof(k));
    if (rc != DRV_OK)
        return rc;
    line[DRV_NET_KEY_LEN] = '\n';
    line[DRV_NET_KEY_LEN + 1] = '\0';
    rc = drv_file_mkdir_p(identity_dir, 0700, err);
    if (rc == DRV_OK)
        rc = drv_file_write_atomic(path, line, DRV_NET_KEY_LEN + 1, 0600, err);
    if (rc == DRV_OK) {
        memcpy(priv, line, DRV_NET_KEY_LEN);
        priv[DRV_NET_KEY_LEN] = '\0';
        rc = key_encode(p, pub, err);
    }
    mbedtls_platform_zeroize(line, sizeof(line));
    if (rc != DRV_OK)
        return drv_error_wrap(err, "wireguard key %s", path);
    drv_log_info("wireguard key created", "path=%s public_key=%s", path, pub);
    return DRV_OK;
}

drv_err_t drv_wg_key_load_or_create(const char *identity_dir, char pub[DRV_NET_KEY_LEN + 1],
                                    drv_error_t *err)
{
    char priv[DRV_NET_KEY_LEN + 1];
    char p[DRV_NET_KEY_LEN + 1];
    drv_err_t rc = key_load(identity_dir, priv, p, err);
    mbedtls_platform_zeroize(priv, sizeof(priv));
    if (rc == DRV_OK)
        memcpy(pub, p, sizeof(p));
    return rc;
}

/* ---- Checks and formatting ---- */

/* The structs may be built by hand (tests, callers other than drv_netstate_parse). */
static bool cidr_ok(drv_net_cidr_t c)
{
    return c.prefix >= 1 && c.prefix <= 32 && (c.addr & ~drv_net_prefix_mask(c.prefix)) == 0;
}

static bool ifname_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DRV_WG_IFNAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == ':' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

/* host:port with the characters of an IPv4/IPv6 address or a DNS name only: it goes into a
 * configuration file line and onto wg's command line. */
static bool endpoint_ok(const char *s)
{
    size_t n = strlen(s);
    const char *colon = strrchr(s, ':');
    if (n == 0 || n > DRV_NET_ENDPOINT_MAX || colon == NULL || colon == s || colon[1] == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '%'))
            return false;
    }
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return strlen(colon + 1) <= 5 && strtoul(colon + 1, NULL, 10) <= 65535;
}

static drv_err_t ctx_of(const drv_wg_opts_t *o, wg_ctx_t *c, drv_error_t *err)
{
    if (o == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "wireguard: no options");
    c->ifname = o->ifname ? o->ifname : DRV_WG_DEFAULT_IFNAME;
    c->tool_path = o->tool_path ? o->tool_path : DRV_WG_DEFAULT_TOOL_PATH;
    c->sysctl_path = o->sysctl_path ? o->sysctl_path : DRV_WG_DEFAULT_SYSCTL;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : DRV_WG_DEFAULT_TIMEOUT_MS;
    if (!ifname_ok(c->ifname))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "wireguard.interface: \"%.40s\" is not a valid interface name (1-%d "
                             "characters, no '/', ':' or spaces)",
                             c->ifname, DRV_WG_IFNAME_MAX);
    if (c->timeout_ms > WG_TIMEOUT_MAX_MS)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "wireguard.timeout: %u ms is over %u",
                             c->timeout_ms, WG_TIMEOUT_MAX_MS);
    if (strlen(c->tool_path) >= PATH_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "wireguard.toolPath: too long");
    return DRV_OK;
}

/* The peer named name, or -1. */
static long peer_index(const drv_netstate_t *ns, const char *name)
{
    for (size_t i = 0; i < ns->npeers; i++)
        if (!strcmp(ns->peers[i].node, name))
            return (long)i;
    return -1;
}

static drv_err_t netstate_check(const drv_netstate_t *ns, drv_error_t *err)
{
    if (ns == NULL || !ns->present)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network: no network section");
    if (!cidr_ok(ns->pod_cidr) || ns->pod_cidr.prefix > 30)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "network.podCIDR: not a masked IPv4 prefix of /1 to /30");
    if (!cidr_ok(ns->cluster_cidr) || !drv_net_cidr_covers(ns->cluster_cidr, ns->pod_cidr))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "network.clusterCIDR: not a masked IPv4 prefix holding podCIDR");
    if (ns->listen_port == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network.listenPort: must be 1-65535");
    if (ns->mtu < WG_MTU_MIN)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network.mtu: %u is under %d",
                             (unsigned)ns->mtu, WG_MTU_MIN);
    if (ns->npeers > DRV_NET_PEERS_MAX || (ns->npeers > 0 && ns->peers == NULL))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "network.peers: more than %d",
                             DRV_NET_PEERS_MAX);
    for (size_t i = 0; i < ns->npeers; i++) {
        const drv_net_peer_t *p = &ns->peers[i];
        if (!key_valid(p->public_key))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].publicKey: not 32 bytes of base64", i);
        drv_net_cidr_t c = p->pod_cidr;
        if (!cidr_ok(c) || !drv_net_cidr_covers(ns->cluster_cidr, c))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].podCIDR: not a prefix inside clusterCIDR", i);
        if (p->endpoint[0] != '\0' && !endpoint_ok(p->endpoint))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "network.peers[%zu].endpoint: not host:port", i);
        if (p->via[0] != '\0') {
            long r = peer_index(ns, p->via);
            if (r < 0 || (size_t)r == i)
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "network.peers[%zu].via: \"%.80s\" is not another peer", i,
                                     p->via);
            if (ns->peers[r].via[0] != '\0')
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "network.peers[%zu].via: relay \"%.80s\" is itself reached "
                                     "through a relay",
                                     i, p->via);
        }
    }
    return DRV_OK;
}

/* ---- The syncconf file ---- */

drv_err_t drv_wg_render(const drv_wg_opts_t *o, const drv_netstate_t *ns, const char *priv_b64,
                        drv_buf_t *out, drv_error_t *err)
{
    drv_err_t rc = netstate_check(ns, err);
    if (rc != DRV_OK)
        return rc;
    if (!key_valid(priv_b64))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "wireguard: the private key is not 32 bytes of base64");
    bool behind_nat = o != NULL && o->behind_nat;
    size_t start = out->len;
    rc = drv_buf_printf(out, "[Interface]\nPrivateKey = %s\nListenPort = %u\n", priv_b64,
                        (unsigned)ns->listen_port);
    for (size_t i = 0; rc == DRV_OK && i < ns->npeers; i++) {
        const drv_net_peer_t *p = &ns->peers[i];
        if (p->via[0] != '\0')
            continue; /* reached through its relay's section */
        char c[DRV_NET_CIDR_STR];
        drv_net_cidr_format(p->pod_cidr, c);
        rc = drv_buf_printf(out, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s", p->public_key, c);
        for (size_t j = 0; rc == DRV_OK && j < ns->npeers; j++) {
            if (strcmp(ns->peers[j].via, p->node) != 0)
                continue;
            drv_net_cidr_format(ns->peers[j].pod_cidr, c);
            rc = drv_buf_printf(out, ", %s", c);
        }
        if (rc == DRV_OK)
            rc = drv_buf_putc(out, '\n');
        if (rc == DRV_OK && p->endpoint[0] != '\0')
            rc = drv_buf_printf(out, "Endpoint = %s\n", p->endpoint);
        if (rc == DRV_OK && ns->keepalive_s > 0 && (behind_nat || p->endpoint[0] == '\0'))
            rc = drv_buf_printf(out, "PersistentKeepalive = %u\n", (unsigned)ns->keepalive_s);
    }
    if (rc != DRV_OK) {
        if (out->data != NULL)
            mbedtls_platform_zeroize(out->data + start, out->len - start);
        drv_buf_truncate(out, start);
        return drv_error_set(err, rc, 0, "wireguard: configuration over %zu bytes", out->max);
    }
    return DRV_OK;
}

/* ---- Running the tools ---- */

/* name's full path in the colon-separated dirs; DRV_ERR_NOTFOUND if no executable is there. */
static drv_err_t tool_find(const wg_ctx_t *c, const char *name, char out[PATH_MAX])
{
    const char *p = c->tool_path;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0 && p[0] == '/' && drv_fmt(out, PATH_MAX, "%.*s/%s", (int)n, p, name) == DRV_OK &&
            access(out, X_OK) == 0)
            return DRV_OK;
        p += n;
        if (*p == ':')
            p++;
    }
    return DRV_ERR_NOTFOUND;
}

/* Runs argv (argv[0] searched in the tool path) to its end: stdout into out (may be NULL),
 * *code its exit code (-1 when killed by a signal). A tool that cannot be started or misses
 * its deadline is an error; its exit code is the caller's to judge. stderr (cut) into errtext. */
static drv_err_t tool_run(const wg_ctx_t *c, const char *const argv[], drv_buf_t *out, int *code,
                          char errtext[WG_TOOL_ERR_MAX], drv_error_t *err)
{
    char path[PATH_MAX];
    if (tool_find(c, argv[0], path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "%s: not found in %s", argv[0],
                             c->tool_path);
    char env_path[PATH_MAX + 8];
    if (drv_fmt(env_path, sizeof(env_path), "PATH=%s", c->tool_path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "wireguard.toolPath: too long");
    static char env_lang[] = "LC_ALL=C";
    char *envp[] = {env_path, env_lang, NULL};
    drv_proc_opts_t po = {
        .argv = (char *const *)argv, .envp = envp, .in_fd = -1, .path = path, .new_pgroup = true};
    _cleanup_buf_ drv_buf_t eb = DRV_BUF_INIT(WG_TOOL_ERR_MAX);
    drv_buf_t discard = DRV_BUF_INIT(WG_TOOL_OUT_MAX);
    drv_proc_io_t io = {.out = out ? out : &discard,
                        .errout = &eb,
                        .out_strict = true,
                        .timeout_ms = c->timeout_ms};
    int status = 0;
    drv_error_t perr = DRV_ERROR_INIT;
    drv_err_t rc = drv_proc_exec(&po, &io, &status, &perr);
    drv_buf_free(&discard);
    if (rc != DRV_OK)
        return drv_error_set(err, rc, perr.sys_errno, "%s %s: %s", argv[0], argv[1] ? argv[1] : "",
                             drv_error_msg(&perr));
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* One line for messages: newlines and tabs become spaces, the end trimmed. */
    drv_fmt_cut(errtext, WG_TOOL_ERR_MAX, "%s", drv_buf_str(&eb));
    for (char *p = errtext; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    for (size_t n = strlen(errtext); n > 0 && errtext[n - 1] == ' '; n--)
        errtext[n - 1] = '\0';
    return DRV_OK;
}

/* The command line for messages ("ip route replace 10.42.2.0/24 dev drover-wg"). */
static void argv_str(const char *const argv[], char *out, size_t outsz)
{
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; argv[i] != NULL && used + 1 < outsz; i++) {
        drv_fmt_cut(out + used, outsz - used, "%s%s", i ? " " : "", argv[i]);
        used = strlen(out);
    }
}

/* tool_run that also fails on a non-zero exit, naming the command and its stderr. */
static drv_err_t tool_ok(const wg_ctx_t *c, const char *const argv[], drv_buf_t *out,
                         drv_error_t *err)
{
    char errtext[WG_TOOL_ERR_MAX];
    int code = 0;
    drv_err_t rc = tool_run(c, argv, out, &code, errtext, err);
    if (rc != DRV_OK)
        return rc;
    if (code != 0) {
        char cmd[256];
        argv_str(argv, cmd, sizeof(cmd));
        return drv_error_set(err, DRV_ERR_IO, 0, "%s: exit %d%s%s", cmd, code,
                             errtext[0] ? ": " : "", errtext);
    }
    return DRV_OK;
}

/* Does the interface exist, and which kind is it? impl NONE: missing. Another kind of device
 * with that name is an error (it is not ours to configure). */
static drv_err_t link_kind(const wg_ctx_t *c, drv_wg_impl_t *impl, drv_error_t *err)
{
    const char *argv[] = {"ip", "-d", "-o", "link", "show", "dev", c->ifname, NULL};
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(WG_TOOL_OUT_MAX);
    char errtext[WG_TOOL_ERR_MAX];
    int code = 0;
    drv_err_t rc = tool_run(c, argv, &out, &code, errtext, err);
    if (rc != DRV_OK)
        return rc;
    if (code != 0) {
        *impl = DRV_WG_IMPL_NONE;
        return DRV_OK;
    }
    const char *s = drv_buf_str(&out);
    /* `ip -d -o` puts the link kind first on the details part: "...\    wireguard ..." or
     * "...\    tun type tun ...". */
    if (strstr(s, " wireguard ") != NULL)
        *impl = DRV_WG_IMPL_KERNEL;
    else if (strstr(s, " tun ") != NULL)
        *impl = DRV_WG_IMPL_USERSPACE;
    else
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "interface %s exists and is not a WireGuard interface", c->ifname);
    return DRV_OK;
}

static drv_err_t link_create(const wg_ctx_t *c, bool no_kernel, drv_wg_impl_t *impl,
                             drv_error_t *err)
{
    char kerr[WG_TOOL_ERR_MAX] = "not tried";
    if (!no_kernel) {
        const char *argv[] = {"ip", "link", "add", c->ifname, "type", "wireguard", NULL};
        int code = 0;
        drv_err_t rc = tool_run(c, argv, NULL, &code, kerr, err);
        if (rc != DRV_OK)
            return rc;
        if (code == 0) {
            *impl = DRV_WG_IMPL_KERNEL;
            return DRV_OK;
        }
        if (kerr[0] == '\0')
            drv_fmt_cut(kerr, sizeof(kerr), "exit %d", code);
    }
    char path[PATH_MAX];
    if (tool_find(c, "wireguard-go", path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "no WireGuard: the kernel has none (ip link add type wireguard: "
                             "%.300s) and wireguard-go is not installed (searched %s)",
                             kerr, c->tool_path);
    /* It daemonizes: the command returns once the device exists and a child serves it. */
    const char *argv[] = {"wireguard-go", c->ifname, NULL};
    drv_err_t rc = tool_ok(c, argv, NULL, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "no kernel WireGuard (%.300s), and userspace failed", kerr);
    drv_wg_impl_t now = DRV_WG_IMPL_NONE;
    rc = link_kind(c, &now, err);
    if (rc != DRV_OK)
        return rc;
    if (now == DRV_WG_IMPL_NONE)
        return drv_error_set(err, DRV_ERR_IO, 0, "wireguard-go %s: exited, but no interface",
                             c->ifname);
    *impl = DRV_WG_IMPL_USERSPACE;
    return DRV_OK;
}

/* Parses "a.b.c.d" or "a.b.c.d/n" (ip's route keys) into a cidr; false if not one (the kernel
 * keeps no host bits in a route's key, so one with them is none of ours). */
static bool route_key_parse(const char *s, drv_net_cidr_t *out)
{
    if (strchr(s, '/') != NULL)
        return drv_net_cidr_parse(s, false, out, NULL) == DRV_OK;
    if (!drv_net_ip_parse(s, &out->addr))
        return false;
    out->prefix = 32;
    return true;
}

static bool cidr_eq(drv_net_cidr_t a, drv_net_cidr_t b)
{
    return a.addr == b.addr && a.prefix == b.prefix;
}

/* Routes of the pod CIDRs of every peer through the interface; others on it removed. */
static drv_err_t routes_sync(const wg_ctx_t *c, const drv_netstate_t *ns, size_t *nroutes,
                             drv_error_t *err)
{
    char proto[8];
    drv_fmt_cut(proto, sizeof(proto), "%d", DRV_WG_RT_PROTO);
    for (size_t i = 0; i < ns->npeers; i++) {
        char cidr[DRV_NET_CIDR_STR];
        drv_net_cidr_format(ns->peers[i].pod_cidr, cidr);
        const char *argv[] = {"ip",      "route", "replace", cidr, "dev",
                              c->ifname, "proto", proto,     NULL};
        drv_err_t rc = tool_ok(c, argv, NULL, err);
        if (rc != DRV_OK)
            return rc;
    }
    *nroutes = ns->npeers;

    const char *list[] = {"ip", "-o", "route", "show", "dev", c->ifname, NULL};
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(WG_TOOL_OUT_MAX);
    drv_err_t rc = tool_ok(c, list, &out, err);
    if (rc != DRV_OK)
        return rc;
    char *save = NULL;
    for (char *line = strtok_r(out.data ? out.data : "", "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (sp != NULL)
            *sp = '\0';
        drv_net_cidr_t k;
        bool wanted = false;
        if (route_key_parse(line, &k))
            for (size_t i = 0; i < ns->npeers && !wanted; i++)
                wanted = cidr_eq(k, ns->peers[i].pod_cidr);
        if (wanted || line[0] == '\0')
            continue;
        const char *del[] = {"ip", "route", "del", line, "dev", c->ifname, NULL};
        rc = tool_ok(c, del, NULL, err);
        if (rc != DRV_OK)
            return rc;
        drv_log_info("wireguard: stale route removed", "route=%s dev=%s", line, c->ifname);
    }
    return DRV_OK;
}

/* The blackhole for the cluster CIDR, and no other of ours (an old cluster CIDR's). */
static drv_err_t blackhole_sync(const wg_ctx_t *c, drv_net_cidr_t cluster, drv_error_t *err)
{
    char proto[8], metric[8], cidr[DRV_NET_CIDR_STR];
    drv_fmt_cut(proto, sizeof(proto), "%d", DRV_WG_RT_PROTO);
    drv_fmt_cut(metric, sizeof(metric), "%d", DRV_WG_BLACKHOLE_METRIC);
    drv_net_cidr_format(cluster, cidr);
    const char *add[] = {"ip",     "route", "replace", "blackhole", cidr,
                         "metric", metric,  "proto",   proto,       NULL};
    drv_err_t rc = tool_ok(c, add, NULL, err);
    if (rc != DRV_OK)
        return rc;
    const char *list[] = {"ip", "-o", "route", "show", "type", "blackhole", "proto", proto, NULL};
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(WG_TOOL_OUT_MAX);
    rc = tool_ok(c, list, &out, err);
    if (rc != DRV_OK)
        return rc;
    char *save = NULL;
    for (char *line = strtok_r(out.data ? out.data : "", "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        /* "blackhole 10.42.0.0/16 metric 4000" */
        char *tok_save = NULL;
        char *kind = strtok_r(line, " ", &tok_save);
        char *dst = strtok_r(NULL, " ", &tok_save);
        drv_net_cidr_t k;
        if (kind == NULL || strcmp(kind, "blackhole") != 0 || dst == NULL ||
            !route_key_parse(dst, &k) || cidr_eq(k, cluster))
            continue;
        const char *del[] = {"ip", "route", "del", "blackhole", dst, "proto", proto, NULL};
        rc = tool_ok(c, del, NULL, err);
        if (rc != DRV_OK)
            return rc;
        drv_log_info("wireguard: old cluster blackhole removed", "route=%s", dst);
    }
    return DRV_OK;
}

static drv_err_t forwarding_on(const wg_ctx_t *c, drv_error_t *err)
{
    _cleanup_close_ int fd = open(c->sysctl_path, O_WRONLY | O_CLOEXEC | O_TRUNC);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "open %s", c->sysctl_path);
    drv_err_t rc = drv_file_write_all(fd, "1\n", 2, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "enable forwarding: %s", c->sysctl_path);
    return DRV_OK;
}

/* Writes the syncconf file (0600, private key inside), hands it to wg, removes it. */
static drv_err_t peers_sync(const wg_ctx_t *c, const drv_wg_opts_t *o, const drv_netstate_t *ns,
                            const char *priv, drv_error_t *err)
{
    char path[PATH_MAX];
    if (drv_fmt(path, sizeof(path), "%s/%s.conf", o->run_dir, c->ifname) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "wireguard: run directory path too long");
    drv_buf_t conf = DRV_BUF_INIT(WG_CONF_MAX);
    drv_err_t rc = drv_wg_render(o, ns, priv, &conf, err);
    if (rc == DRV_OK)
        rc = drv_file_mkdir_p(o->run_dir, 0700, err);
    /* The file lives on /run (a tmpfs): replaced by rename so that wg never reads half of it,
     * without the fsync that would only cost time. */
    if (rc == DRV_OK)
        rc = drv_file_write_replace(path, drv_buf_str(&conf), conf.len, 0600, err);
    wipe_buf(&conf);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "wireguard configuration");
    const char *argv[] = {"wg", "syncconf", c->ifname, path, NULL};
    rc = tool_ok(c, argv, NULL, err);
    /* The private key stays in one file only (the identity directory's). */
    if (unlink(path) != 0 && errno != ENOENT && rc == DRV_OK)
        rc = drv_error_set(err, drv_error_from_errno(errno), errno, "unlink %s", path);
    return rc;
}

drv_err_t drv_wg_apply(const drv_wg_opts_t *o, const drv_netstate_t *ns, drv_wg_state_t *st,
                       drv_error_t *err)
{
    wg_ctx_t c;
    drv_err_t rc = ctx_of(o, &c, err);
    if (rc == DRV_OK)
        rc = netstate_check(ns, err);
    if (rc != DRV_OK)
        return rc;
    if (o->run_dir == NULL || o->run_dir[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "wireguard: the run directory must be an absolute path");

    char priv[DRV_NET_KEY_LEN + 1];
    drv_wg_state_t s = {0};
    rc = key_load(o->identity_dir, priv, s.public_key, err);
    if (rc != DRV_OK)
        return rc;

    /* Fail closed first: whatever happens below, the cluster CIDR leaves through no other
     * interface. */
    rc = blackhole_sync(&c, ns->cluster_cidr, err);
    if (rc == DRV_OK)
        rc = link_kind(&c, &s.impl, err);
    if (rc == DRV_OK && s.impl == DRV_WG_IMPL_NONE) {
        rc = link_create(&c, o->no_kernel, &s.impl, err);
        s.created = rc == DRV_OK;
        if (s.created)
            drv_log_info("wireguard interface created", "dev=%s kind=%s", c.ifname,
                         drv_wg_impl_name(s.impl));
    }
    char mtu[8], addr[DRV_NET_CIDR_STR];
    drv_fmt_cut(mtu, sizeof(mtu), "%u", (unsigned)ns->mtu);
    drv_net_cidr_format((drv_net_cidr_t){ns->pod_cidr.addr, 32}, addr);
    if (rc == DRV_OK) {
        const char *argv[] = {"ip", "addr", "replace", addr, "dev", c.ifname, NULL};
        rc = tool_ok(&c, argv, NULL, err);
    }
    if (rc == DRV_OK)
        rc = peers_sync(&c, o, ns, priv, err);
    mbedtls_platform_zeroize(priv, sizeof(priv));
    /* The MTU only after `wg syncconf` answered: wireguard-go returns before its background
     * process has opened the device, and that process sets its own MTU (1420) when it does;
     * once it answers on its UAPI socket, that has happened and ours stays. */
    if (rc == DRV_OK) {
        const char *argv[] = {"ip", "link", "set", "dev", c.ifname, "mtu", mtu, NULL};
        rc = tool_ok(&c, argv, NULL, err);
    }
    if (rc == DRV_OK) {
        const char *argv[] = {"ip", "link", "set", "dev", c.ifname, "up", NULL};
        rc = tool_ok(&c, argv, NULL, err);
    }
    if (rc == DRV_OK)
        rc = routes_sync(&c, ns, &s.nroutes, err);
    if (rc == DRV_OK)
        rc = forwarding_on(&c, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "wireguard %s", c.ifname);
    for (size_t i = 0; i < ns->npeers; i++)
        s.npeers += ns->peers[i].via[0] == '\0';
    if (st != NULL)
        *st = s;
    return DRV_OK;
}

/* ---- Reading the peers back ---- */

/* A decimal of 1-20 digits within max. */
static bool dec_parse(const char *s, uint64_t max, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool allowed_ips_ok(const char *s)
{
    if (!strcmp(s, "(none)"))
        return true;
    if (s[0] == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '.' || c == ':' ||
              c == '/' || c == ','))
            return false;
    }
    return true;
}

/* Splits line at tabs into at most max fields; the count, or max + 1 when there are more. */
static size_t split_tabs(char *line, char **f, size_t max)
{
    size_t n = 0;
    for (char *p = line;;) {
        if (n == max)
            return max + 1;
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (t == NULL)
            return n;
        *t = '\0';
        p = t + 1;
    }
}

drv_err_t drv_wg_dump_parse(const char *text, drv_wg_peer_stat_t **peers, size_t *npeers,
                            drv_error_t *err)
{
    if (text == NULL)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "wg dump: no output");
    size_t tlen = strlen(text);
    if (tlen > WG_DUMP_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "wg dump: over %zu bytes", WG_DUMP_MAX);
    char *copy = malloc(tlen + 1);
    if (copy == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "wg dump: out of memory");
    memcpy(copy, text, tlen + 1);
    drv_wg_peer_stat_t *list = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    drv_err_t rc = DRV_OK;
    char *p = copy;
    if (tlen == 0 || copy[tlen - 1] != '\n')
        rc = drv_error_set(err, DRV_ERR_PROTO, 0, "wg dump: output does not end with a newline");
    while (rc == DRV_OK && *p != '\0') {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        char *line = p;
        p = nl + 1;
        lineno++;
        char *f[9];
        size_t nf = split_tabs(line, f, 8);
        if (lineno == 1) {
            /* private-key public-key listen-port fwmark: never quoted (the private key). */
            uint64_t port = 0;
            if (nf != 4)
                rc = drv_error_set(err, DRV_ERR_PROTO, 0,
                                   "wg dump: line 1 (interface): %zu fields, want 4",
                                   nf > 8 ? (size_t)9 : nf);
            else if (!key_valid(f[1]))
                rc = drv_error_set(err, DRV_ERR_PROTO, 0,
                                   "wg dump: line 1 (interface): public key not a key");
            else if (!dec_parse(f[2], 65535, &port))
                rc = drv_error_set(err, DRV_ERR_PROTO, 0,
                                   "wg dump: line 1 (interface): listen port not a port");
            continue;
        }
        if (nf != 8) {
            rc = drv_error_set(err, DRV_ERR_PROTO, 0, "wg dump: line %zu: %s fields, want 8",
                               lineno, nf > 8 ? "more than 8" : (nf < 8 ? "fewer than 8" : "8"));
            break;
        }
        drv_wg_peer_stat_t s = {0};
        uint64_t v = 0;
        const char *bad = NULL;
        if (!key_valid(f[0]))
            bad = "public key";
        else if (strcmp(f[1], "(none)") != 0 && !key_valid(f[1]))
            bad = "preshared key";
        else if (strcmp(f[2], "(none)") != 0 && !endpoint_ok(f[2]))
            bad = "endpoint";
        else if (!allowed_ips_ok(f[3]))
            bad = "allowed ips";
        else if (!dec_parse(f[4], (uint64_t)1 << 62, &v))
            bad = "latest handshake";
        else {
            s.latest_handshake = (long long)v;
            if (!dec_parse(f[5], UINT64_MAX, &s.rx_bytes))
                bad = "transfer rx";
            else if (!dec_parse(f[6], UINT64_MAX, &s.tx_bytes))
                bad = "transfer tx";
            else if (strcmp(f[7], "off") != 0 && !(dec_parse(f[7], 65535, &v) && v > 0))
                bad = "persistent keepalive";
            else
                s.keepalive_s = strcmp(f[7], "off") ? (unsigned)v : 0;
        }
        if (bad != NULL) {
            rc = drv_error_set(err, DRV_ERR_PROTO, 0, "wg dump: line %zu: bad %s", lineno, bad);
            break;
        }
        memcpy(s.public_key, f[0], DRV_NET_KEY_LEN + 1);
        if (strcmp(f[2], "(none)") != 0)
            memcpy(s.endpoint, f[2], strlen(f[2]) + 1);
        if (n == WG_DUMP_PEERS_MAX) {
            rc = drv_error_set(err, DRV_ERR_TOOBIG, 0, "wg dump: more than %d peers",
                               WG_DUMP_PEERS_MAX);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            drv_wg_peer_stat_t *g = realloc(list, ncap * sizeof(*g));
            if (g == NULL) {
                rc = drv_error_set(err, DRV_ERR_NOMEM, 0, "wg dump: out of memory");
                break;
            }
            list = g;
            cap = ncap;
        }
        list[n++] = s;
    }
    if (rc == DRV_OK && lineno == 0)
        rc = drv_error_set(err, DRV_ERR_PROTO, 0, "wg dump: no interface line");
    mbedtls_platform_zeroize(copy, tlen);
    free(copy);
    if (rc != DRV_OK) {
        free(list);
        return rc;
    }
    *peers = list;
    *npeers = n;
    return DRV_OK;
}

drv_err_t drv_wg_handshakes(const drv_wg_opts_t *o, drv_wg_peer_stat_t **peers, size_t *npeers,
                            drv_error_t *err)
{
    wg_ctx_t c;
    drv_err_t rc = ctx_of(o, &c, err);
    if (rc != DRV_OK)
        return rc;
    const char *argv[] = {"wg", "show", c.ifname, "dump", NULL};
    drv_buf_t out = DRV_BUF_INIT(WG_DUMP_MAX);
    rc = tool_ok(&c, argv, &out, err);
    if (rc == DRV_OK)
        rc = drv_wg_dump_parse(drv_buf_str(&out), peers, npeers, err);
    wipe_buf(&out); /* its first line holds the private key */
    return rc;
}

long long drv_wg_handshake_age(const drv_wg_peer_stat_t *p, long long now_s)
{
    if (p->latest_handshake <= 0)
        return -1;
    return now_s > p->latest_handshake ? now_s - p->latest_handshake : 0;
}

drv_err_t drv_wg_remove(const drv_wg_opts_t *o, drv_error_t *err)
{
    wg_ctx_t c;
    drv_err_t rc = ctx_of(o, &c, err);
    if (rc != DRV_OK)
        return rc;
    drv_wg_impl_t impl = DRV_WG_IMPL_NONE;
    rc = link_kind(&c, &impl, err);
    if (rc == DRV_OK && impl != DRV_WG_IMPL_NONE) {
        /* Deleting a wireguard-go device ends its daemon: it exits when its TUN goes. */
        const char *argv[] = {"ip", "link", "del", "dev", c.ifname, NULL};
        rc = tool_ok(&c, argv, NULL, err);
    }
    if (rc == DRV_OK) {
        char proto[8];
        drv_fmt_cut(proto, sizeof(proto), "%d", DRV_WG_RT_PROTO);
        const char *argv[] = {"ip", "route", "flush", "proto", proto, NULL};
        rc = tool_ok(&c, argv, NULL, err);
    }
    if (rc != DRV_OK)
        return drv_error_wrap(err, "remove wireguard %s", c.ifname);
    return DRV_OK;
}
