/* CNI for pods: the agent's network configuration list (bridge + host-local + portmap), the
 * plugin protocol (environment, config on stdin, result or error object on stdout) and the
 * plugin calls, through the shared runner with a deadline and capped output. */
#include "runtime/cni.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/fmt.h"
#include "drover/ipv4.h"
#include "drover/proc.h"
#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/log.h"
#include "drover/names.h"

/* What the plugins search for iptables (and anything else they run). */
#define PLUGIN_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CNI_TIMEOUT_MAX_MS 600000u
#define CNI_ID_MAX 128
#define CNI_NAME_MAX 64
#define CNI_IFNAME_MAX 15
#define CNI_DIR_MAX 512

/* cfg with the defaults filled in. */
typedef struct cni_settings {
    const char *plugin_dir;
    const char *state_dir; /* NULL when not needed */
    const char *subnet;
    const char *bridge;
    const char *name;
    unsigned timeout_ms;
} cni_settings_t;

/* Appends item to arr and returns it; on any failure (either NULL included) deletes item and
 * returns NULL, so calls chain without leaks. */
static cJSON *arr_add(cJSON *arr, cJSON *item)
{
    if (arr == NULL || item == NULL || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

static bool valid_ifname(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > CNI_IFNAME_MAX || !strcmp(s, ".") ||
        !strcmp(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == ':' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static bool valid_abs_dir(const char *s)
{
    return s != NULL && s[0] == '/' && strlen(s) <= CNI_DIR_MAX;
}

static drv_err_t settings_of(const drv_cni_config_t *cfg, bool need_state, cni_settings_t *s,
                             drv_error_t *err)
{
    if (cfg == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni: no configuration");
    s->plugin_dir = cfg->plugin_dir ? cfg->plugin_dir : DRV_CNI_DEFAULT_PLUGIN_DIR;
    s->state_dir = cfg->state_dir;
    s->subnet = cfg->subnet ? cfg->subnet : DRV_CNI_DEFAULT_SUBNET;
    s->bridge = cfg->bridge ? cfg->bridge : DRV_CNI_DEFAULT_BRIDGE;
    s->name = cfg->network_name ? cfg->network_name : DRV_CNI_DEFAULT_NETWORK;
    s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DRV_CNI_DEFAULT_TIMEOUT_MS;

    if (!valid_abs_dir(s->plugin_dir))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.pluginDir: must be an absolute path of at most %d characters",
                             CNI_DIR_MAX);
    if (cfg->mtu != 0 && (cfg->mtu < 576 || cfg->mtu > 9000))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni.mtu: %u is outside 576..9000", cfg->mtu);
    if (s->timeout_ms > CNI_TIMEOUT_MAX_MS)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni.timeout: %u ms is over the limit of %u",
                             s->timeout_ms, CNI_TIMEOUT_MAX_MS);
    if (!need_state)
        return DRV_OK;
    if (s->state_dir == NULL || s->state_dir[0] == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni.stateDir: required");
    if (!valid_abs_dir(s->state_dir))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.stateDir: must be an absolute path of at most %d characters",
                             CNI_DIR_MAX);
    if (!drv_name_runtime_id(s->name, CNI_NAME_MAX))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.networkName: \"%.80s\" must be 1-%d letters, digits, '_', '.' "
                             "or '-', starting with a letter or digit",
                             s->name, CNI_NAME_MAX);
    if (!valid_ifname(s->bridge))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.bridge: \"%.80s\" is not a valid interface name (1-15 "
                             "characters, no '/', ':' or spaces)",
                             s->bridge);
    /* Read with its host bits first, so that a prefix out of range is named before them. */
    drv_net_cidr_t net;
    if (drv_net_cidr_parse(s->subnet, true, &net, NULL) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.subnet: \"%.80s\" is not an IPv4 CIDR like 10.88.0.0/16",
                             s->subnet);
    if (net.prefix < 8 || net.prefix > 30)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.subnet: prefix /%u must be between /8 and /30",
                             (unsigned)net.prefix);
    drv_net_cidr_t exact;
    if (drv_net_cidr_parse(s->subnet, false, &exact, NULL) != DRV_OK) {
        char nbuf[DRV_NET_CIDR_STR];
        drv_net_cidr_format(net, nbuf);
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni.subnet: \"%s\" has host bits set (did you mean %s?)", s->subnet,
                             nbuf);
    }
    return DRV_OK;
}

drv_err_t drv_cni_config_validate(const drv_cni_config_t *cfg, drv_error_t *err)
{
    cni_settings_t s;
    return settings_of(cfg, true, &s, err);
}

drv_err_t drv_cni_conflist_build(const drv_cni_config_t *cfg, bool portmap, cJSON **out,
                                 drv_error_t *err)
{
    cni_settings_t s;
    drv_err_t rc = settings_of(cfg, true, &s, err);
    if (rc != DRV_OK)
        return rc;
    char data_dir[CNI_DIR_MAX + 32];
    int n = snprintf(data_dir, sizeof(data_dir), "%s/cni/networks", s.state_dir);
    if (n < 0 || (size_t)n >= sizeof(data_dir))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni.stateDir: too long");

    /* cJSON's Add* functions take a NULL parent (and then fail), so one check at the end
     * covers every step. */
    _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
    bool ok = cJSON_AddStringToObject(root, "cniVersion", DRV_CNI_VERSION) &&
              cJSON_AddStringToObject(root, "name", s.name);
    cJSON *plugins = cJSON_AddArrayToObject(root, "plugins");

    cJSON *bridge = arr_add(plugins, cJSON_CreateObject());
    ok = ok && cJSON_AddStringToObject(bridge, "type", "bridge") &&
         cJSON_AddStringToObject(bridge, "bridge", s.bridge) &&
         cJSON_AddTrueToObject(bridge, "isGateway") &&
         cJSON_AddBoolToObject(bridge, "ipMasq", !cfg->no_ip_masq) &&
         cJSON_AddTrueToObject(bridge, "hairpinMode") &&
         (cfg->mtu == 0 || cJSON_AddNumberToObject(bridge, "mtu", cfg->mtu));
    cJSON *ipam = cJSON_AddObjectToObject(bridge, "ipam");
    ok = ok && cJSON_AddStringToObject(ipam, "type", "host-local");
    cJSON *range = arr_add(arr_add(cJSON_AddArrayToObject(ipam, "ranges"), cJSON_CreateArray()),
                           cJSON_CreateObject());
    ok = ok && cJSON_AddStringToObject(range, "subnet", s.subnet);
    cJSON *route = arr_add(cJSON_AddArrayToObject(ipam, "routes"), cJSON_CreateObject());
    ok = ok && cJSON_AddStringToObject(route, "dst", "0.0.0.0/0") &&
         cJSON_AddStringToObject(ipam, "dataDir", data_dir);

    if (portmap) {
        cJSON *pm = arr_add(plugins, cJSON_CreateObject());
        ok = ok && cJSON_AddStringToObject(pm, "type", "portmap");
        cJSON *caps = cJSON_AddObjectToObject(pm, "capabilities");
        ok = ok && cJSON_AddTrueToObject(caps, "portMappings") && cJSON_AddTrueToObject(pm, "snat");
    }
    if (!ok)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cni: building the network configuration");
    *out = TAKE_PTR(root);
    return DRV_OK;
}

/* ---- pod and ports ---- */

static const char *proto_name(const char *p)
{
    if (p == NULL || !strcasecmp(p, "tcp"))
        return "tcp";
    if (!strcasecmp(p, "udp"))
        return "udp";
    if (!strcasecmp(p, "sctp"))
        return "sctp";
    return NULL;
}

drv_err_t drv_cni_ports_validate(const drv_cni_port_t *ports, size_t n, drv_error_t *err)
{
    if (n > 0 && ports == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "ports: missing");
    if (n > DRV_CNI_PORTS_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "ports: %zu mappings, at most %d allowed", n,
                             DRV_CNI_PORTS_MAX);
    for (size_t i = 0; i < n; i++) {
        const drv_cni_port_t *p = &ports[i];
        if (p->container_port == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "ports[%zu].containerPort: must be between 1 and 65535", i);
        if (p->host_port == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "ports[%zu].hostPort: must be between 1 and 65535", i);
        if (proto_name(p->protocol) == NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "ports[%zu].protocol: must be TCP, UDP or SCTP, not \"%.20s\"", i,
                                 p->protocol);
        if (p->host_ip && p->host_ip[0]) {
            unsigned char buf[sizeof(struct in6_addr)];
            if (inet_pton(AF_INET, p->host_ip, buf) != 1 &&
                inet_pton(AF_INET6, p->host_ip, buf) != 1)
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "ports[%zu].hostIP: \"%.60s\" is not an IP address", i,
                                     p->host_ip);
        }
        for (size_t j = 0; j < i; j++) {
            const drv_cni_port_t *q = &ports[j];
            if (q->host_port == p->host_port && proto_name(q->protocol) == proto_name(p->protocol))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "ports[%zu].hostPort: %u/%s is mapped twice (also ports[%zu])",
                                     i, p->host_port, proto_name(p->protocol), j);
        }
    }
    return DRV_OK;
}

/* A CNI_ARGS value: no ';' or '=' (the separators) and printable ASCII only. */
static bool valid_arg_value(const char *s)
{
    if (strlen(s) > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == ';' || *p == '=' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static drv_err_t pod_validate(const drv_cni_pod_t *pod, bool need_netns, drv_error_t *err)
{
    if (pod == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni: no pod");
    if (!drv_name_runtime_id(pod->container_id, CNI_ID_MAX))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni: container id \"%.80s\" must be 1-%d letters, digits, '_', '.' "
                             "or '-', starting with a letter or digit",
                             pod->container_id ? pod->container_id : "", CNI_ID_MAX);
    if (need_netns && (pod->netns == NULL || pod->netns[0] != '/'))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni: network namespace path required (absolute)");
    if (pod->netns && pod->netns[0] && strlen(pod->netns) >= PATH_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni: network namespace path too long");
    if (pod->ifname && !valid_ifname(pod->ifname))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni: \"%.40s\" is not an interface name",
                             pod->ifname);
    if ((pod->pod_name && !valid_arg_value(pod->pod_name)) ||
        (pod->pod_namespace && !valid_arg_value(pod->pod_namespace)))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni: pod name and namespace must be printable, without ';' or '='");
    return drv_cni_ports_validate(pod->ports, pod->nports, err);
}

/* ---- results and errors ---- */

void drv_cni_result_free(drv_cni_result_t *r)
{
    if (r == NULL)
        return;
    free(r->json);
    memset(r, 0, sizeof(*r));
}

/* Copies s into out with control characters made spaces, cut to outsz. */
static void clean_text(const char *s, size_t len, char *out, size_t outsz)
{
    size_t j = 0;
    for (size_t i = 0; i < len && s[i] && j + 1 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c < ' ' || c == 0x7f) ? ' ' : (char)c;
    }
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

/* Parses text as exactly one JSON value (trailing white space allowed). */
static cJSON *parse_json_exact(const char *data, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(data, len, &end, false);
    if (v == NULL)
        return NULL;
    for (const char *p = end; p < data + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
            cJSON_Delete(v);
            return NULL;
        }
    }
    return v;
}

/* "a.b.c.d/n" or an IPv6 CIDR: fills ip (without prefix) and prefix; *v4 says which. */
static bool parse_cidr_any(const char *s, char ip[DRV_CNI_IP_MAX], unsigned *prefix, bool *v4)
{
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash == s || (size_t)(slash - s) >= DRV_CNI_IP_MAX)
        return false;
    char tmp[DRV_CNI_IP_MAX];
    memcpy(tmp, s, (size_t)(slash - s));
    tmp[slash - s] = '\0';
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, tmp, buf) == 1)
        *v4 = true;
    else if (inet_pton(AF_INET6, tmp, buf) == 1)
        *v4 = false;
    else
        return false;
    const char *p = slash + 1;
    if (*p < '0' || *p > '9' || strlen(p) > 3)
        return false;
    char *end = NULL;
    unsigned long n = strtoul(p, &end, 10);
    if (*end != '\0' || n > (*v4 ? 32u : 128u))
        return false;
    memcpy(ip, tmp, sizeof(tmp));
    *prefix = (unsigned)n;
    return true;
}

drv_err_t drv_cni_result_parse(const char *data, size_t len, drv_cni_result_t *out,
                               drv_error_t *err)
{
    if (data == NULL || len == 0)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "empty result");
    if (len > DRV_CNI_RESULT_MAX)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result of %zu bytes is over the %u byte limit",
                             len, DRV_CNI_RESULT_MAX);
    _cleanup_cjson_ cJSON *root = parse_json_exact(data, len);
    if (root == NULL) {
        char head[64];
        clean_text(data, len < 40 ? len : 40, head, sizeof(head));
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result is not JSON (starts \"%s\")", head);
    }
    if (!cJSON_IsObject(root))
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result is not a JSON object");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "msg");
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "code")) && cJSON_IsString(msg))
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result is an error object: %.200s",
                             msg->valuestring);
    const cJSON *ips = cJSON_GetObjectItemCaseSensitive(root, "ips");
    if (ips == NULL)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result has no \"ips\" (no IP address given)");
    if (!cJSON_IsArray(ips))
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result \"ips\" is not an array");
    const cJSON *ifaces = cJSON_GetObjectItemCaseSensitive(root, "interfaces");
    if (ifaces && !cJSON_IsArray(ifaces))
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result \"interfaces\" is not an array");

    int best = -1, best_rank = -1, i = 0;
    char best_ip[DRV_CNI_IP_MAX] = "";
    unsigned best_prefix = 0;
    const cJSON *best_item = NULL;
    const cJSON *item;
    cJSON_ArrayForEach(item, ips)
    {
        if (!cJSON_IsObject(item))
            return drv_error_set(err, DRV_ERR_PROTO, 0, "result ips[%d] is not an object", i);
        const cJSON *addr = cJSON_GetObjectItemCaseSensitive(item, "address");
        if (!cJSON_IsString(addr))
            return drv_error_set(err, DRV_ERR_PROTO, 0, "result ips[%d].address: missing", i);
        char ip[DRV_CNI_IP_MAX];
        unsigned prefix = 0;
        bool v4 = false;
        if (!parse_cidr_any(addr->valuestring, ip, &prefix, &v4))
            return drv_error_set(err, DRV_ERR_PROTO, 0,
                                 "result ips[%d].address: \"%.60s\" is not an IP address with a "
                                 "prefix length",
                                 i, addr->valuestring);
        const cJSON *gw = cJSON_GetObjectItemCaseSensitive(item, "gateway");
        if (gw) {
            unsigned char buf[sizeof(struct in6_addr)];
            if (!cJSON_IsString(gw) || (inet_pton(AF_INET, gw->valuestring, buf) != 1 &&
                                        inet_pton(AF_INET6, gw->valuestring, buf) != 1))
                return drv_error_set(err, DRV_ERR_PROTO, 0,
                                     "result ips[%d].gateway: not an IP address", i);
        }
        /* Rank: an address on an interface inside the sandbox beats one without an interface
         * index, which beats one on a host-side interface. */
        int rank = 1;
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(item, "interface");
        if (idx) {
            /* Range first: casting a double beyond int is undefined (found by fuzzing). */
            if (!cJSON_IsNumber(idx) || !(idx->valuedouble >= 0 && idx->valuedouble <= 65535) ||
                idx->valuedouble != (double)(int)idx->valuedouble)
                return drv_error_set(err, DRV_ERR_PROTO, 0,
                                     "result ips[%d].interface: not an index", i);
            const cJSON *iface = ifaces ? cJSON_GetArrayItem(ifaces, idx->valueint) : NULL;
            if (iface == NULL)
                return drv_error_set(err, DRV_ERR_PROTO, 0,
                                     "result ips[%d].interface: %d names no interface", i,
                                     idx->valueint);
            const cJSON *sb = cJSON_GetObjectItemCaseSensitive(iface, "sandbox");
            rank = (cJSON_IsString(sb) && sb->valuestring[0]) ? 2 : 0;
        }
        if (v4 && rank > best_rank) {
            best = i;
            best_rank = rank;
            memcpy(best_ip, ip, sizeof(best_ip));
            best_prefix = prefix;
            best_item = item;
        }
        i++;
    }
    if (best < 0)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result has no IPv4 address in \"ips\"");

    char *json = cJSON_PrintUnformatted(root);
    if (json == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "copying the result");
    drv_cni_result_t r;
    memset(&r, 0, sizeof(r));
    memcpy(r.ip, best_ip, sizeof(r.ip));
    r.prefix_len = best_prefix;
    const cJSON *gw = cJSON_GetObjectItemCaseSensitive(best_item, "gateway");
    if (cJSON_IsString(gw) &&
        drv_fmt(r.gateway, sizeof(r.gateway), "%s", gw->valuestring) != DRV_OK) {
        free(json);
        return drv_error_set(err, DRV_ERR_PROTO, 0, "result: gateway too long");
    }
    r.json = json;
    *out = r;
    return DRV_OK;
}

drv_err_t drv_cni_plugin_error(const char *plugin, const char *command, int wait_status,
                               const char *stdout_data, size_t stdout_len, const char *stderr_text,
                               drv_error_t *err)
{
    char why[160];
    if (WIFEXITED(wait_status))
        drv_fmt_cut(why, sizeof(why), "exit status %d", WEXITSTATUS(wait_status));
    else if (WIFSIGNALED(wait_status))
        drv_fmt_cut(why, sizeof(why), "killed by signal %d", WTERMSIG(wait_status));
    else
        drv_fmt_cut(why, sizeof(why), "wait status %d", wait_status);

    _cleanup_cjson_ cJSON *obj = NULL;
    if (stdout_data && stdout_len > 0 && stdout_len <= DRV_CNI_RESULT_MAX)
        obj = parse_json_exact(stdout_data, stdout_len);
    const cJSON *msg = obj ? cJSON_GetObjectItemCaseSensitive(obj, "msg") : NULL;
    const cJSON *code = obj ? cJSON_GetObjectItemCaseSensitive(obj, "code") : NULL;
    if (cJSON_IsString(msg) || cJSON_IsNumber(code)) {
        int c = cJSON_IsNumber(code) ? code->valueint : 0;
        drv_err_t e = DRV_ERR_IO;
        switch (c) {
        case 1: /* incompatible CNI version */
        case 2: /* unsupported field */
            e = DRV_ERR_UNSUPPORTED;
            break;
        case 3: /* container unknown */
            e = DRV_ERR_NOTFOUND;
            break;
        case 4: /* invalid environment */
        case 6: /* decoding failure */
        case 7: /* invalid network config */
            e = DRV_ERR_INVALID;
            break;
        case 11: /* try again later */
            e = DRV_ERR_AGAIN;
            break;
        default:
            break;
        }
        char m[400], d[400];
        clean_text(cJSON_IsString(msg) ? msg->valuestring : "", SIZE_MAX, m, sizeof(m));
        const cJSON *det = cJSON_GetObjectItemCaseSensitive(obj, "details");
        d[0] = '\0';
        if (cJSON_IsString(det))
            clean_text(det->valuestring, SIZE_MAX, d, sizeof(d));
        return drv_error_set(err, e, 0, "cni %s %s: %s%s%s (code %d)", plugin, command,
                             m[0] ? m : "error without a message", d[0] ? ": " : "", d, c);
    }
    char e[300];
    clean_text(stderr_text ? stderr_text : "", SIZE_MAX, e, sizeof(e));
    if (e[0])
        return drv_error_set(err, DRV_ERR_IO, 0, "cni %s %s: %s: %s", plugin, command, why, e);
    if (stdout_data && stdout_len > 0) {
        char o[120];
        clean_text(stdout_data, stdout_len, o, sizeof(o));
        return drv_error_set(err, DRV_ERR_IO, 0, "cni %s %s: %s, output \"%s\"", plugin, command,
                             why, o);
    }
    return drv_error_set(err, DRV_ERR_IO, 0, "cni %s %s: %s, no error message", plugin, command,
                         why);
}

/* ---- running a plugin ---- */

/* Runs plugin `type` from the plugin directory with command and input on stdin. On success
 * (exit 0) *out gets its stdout (malloc'd, NUL-terminated). Errors read "cni TYPE COMMAND: ...". */
static drv_err_t run_plugin(const cni_settings_t *s, const char *type, const char *command,
                            const drv_cni_pod_t *pod, const char *input, char **out, size_t *outlen,
                            drv_error_t *err)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", s->plugin_dir, type);
    if (n < 0 || (size_t)n >= sizeof(path))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni %s %s: plugin path too long", type,
                             command);

    char e_cmd[32], e_id[CNI_ID_MAX + 32], e_netns[PATH_MAX + 16], e_if[48],
        e_path[CNI_DIR_MAX + 16], e_args[700];
    char *envp[8];
    int ne = 0;
    if (drv_fmt(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", command) != DRV_OK ||
        drv_fmt(e_id, sizeof(e_id), "CNI_CONTAINERID=%s", pod->container_id) != DRV_OK ||
        drv_fmt(e_if, sizeof(e_if), "CNI_IFNAME=%s", pod->ifname ? pod->ifname : "eth0") !=
            DRV_OK ||
        drv_fmt(e_path, sizeof(e_path), "CNI_PATH=%s", s->plugin_dir) != DRV_OK ||
        (pod->netns && pod->netns[0] &&
         drv_fmt(e_netns, sizeof(e_netns), "CNI_NETNS=%s", pod->netns) != DRV_OK))
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "CNI %s: container id, interface, netns or plugin path too long",
                             command);
    envp[ne++] = e_cmd;
    envp[ne++] = e_id;
    if (pod->netns && pod->netns[0]) {
        envp[ne++] = e_netns;
    }
    envp[ne++] = e_if;
    envp[ne++] = e_path;
    n = snprintf(e_args, sizeof(e_args), "CNI_ARGS=IgnoreUnknown=1%s%s%s%s",
                 pod->pod_namespace ? ";K8S_POD_NAMESPACE=" : "",
                 pod->pod_namespace ? pod->pod_namespace : "",
                 pod->pod_name ? ";K8S_POD_NAME=" : "", pod->pod_name ? pod->pod_name : "");
    if (n > 0 && (size_t)n < sizeof(e_args))
        envp[ne++] = e_args;
    static char e_syspath[] = "PATH=" PLUGIN_PATH;
    envp[ne++] = e_syspath;
    envp[ne] = NULL;
    char *argv[] = {(char *)type, NULL};

    /* Its own process group, so that a timeout also kills what the plugin runs (iptables). */
    drv_proc_opts_t o = {.argv = argv, .envp = envp, .path = path, .new_pgroup = true};
    _cleanup_buf_ drv_buf_t obuf = DRV_BUF_INIT(DRV_CNI_RESULT_MAX);
    _cleanup_buf_ drv_buf_t ebuf = DRV_BUF_INIT(DRV_CNI_STDERR_MAX);
    drv_proc_io_t io = {.in = input,
                        .in_len = strlen(input),
                        .out = &obuf,
                        .errout = &ebuf,
                        .out_strict = true,
                        .timeout_ms = s->timeout_ms};
    long long start = drv_now_ms();
    int status = 0;
    drv_error_t perr = DRV_ERROR_INIT;
    drv_err_t rc = drv_proc_exec(&o, &io, &status, &perr);
    drv_log_debug("cni plugin call", "plugin=%s command=%s container=%s ms=%llu status=%d", type,
                  command, pod->container_id, (unsigned long long)(drv_now_ms() - start), status);

    if (rc == DRV_ERR_TIMEOUT)
        return drv_error_set(err, DRV_ERR_TIMEOUT, 0,
                             "cni %s %s: no answer within %u ms, plugin killed", type, command,
                             s->timeout_ms);
    if (rc == DRV_ERR_TOOBIG)
        return drv_error_set(err, DRV_ERR_PROTO, 0,
                             "cni %s %s: output over the %u byte limit, plugin killed", type,
                             command, DRV_CNI_RESULT_MAX);
    if (rc != DRV_OK)
        return drv_error_set(err, DRV_ERR_IO, perr.sys_errno, "cni %s %s: cannot run %s", type,
                             command, path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return drv_cni_plugin_error(type, command, status, obuf.data, obuf.len, drv_buf_str(&ebuf),
                                    err);
    size_t len = 0;
    char *data = drv_buf_steal(&obuf, &len);
    if (data == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cni %s %s: output", type, command);
    *out = data;
    if (outlen)
        *outlen = len;
    return DRV_OK;
}

/* ---- network configuration lists ---- */

/* Checks a (possibly stored, so untrusted) list enough to run it: name, cniVersion and
 * plugins with a plain "type". */
static drv_err_t conflist_check(const cJSON *list, drv_error_t *err)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(list, "name");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(list, "cniVersion");
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(list, "plugins");
    if (!cJSON_IsObject(list))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni: network configuration: not an object");
    if (!cJSON_IsString(name) || !drv_name_runtime_id(name->valuestring, CNI_NAME_MAX))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni: network configuration: bad \"name\"");
    if (!cJSON_IsString(ver) || strlen(ver->valuestring) > 16)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni: network configuration: bad \"cniVersion\"");
    if (!cJSON_IsArray(plugins) || cJSON_GetArraySize(plugins) < 1 ||
        cJSON_GetArraySize(plugins) > 16)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cni: network configuration: \"plugins\" must list 1 to 16 plugins");
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, plugins)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type) ||
            !drv_name_runtime_id(type->valuestring, 64))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "cni: network configuration: plugins[%d].type: must be a plain "
                                 "plugin name",
                                 i);
        i++;
    }
    return DRV_OK;
}

static bool set_item(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    return cJSON_AddItemToObject(obj, key, item);
}

/* The stdin of one plugin of the list: the plugin's object plus name, cniVersion, prevResult
 * and the runtimeConfig of the capabilities it declares. Compact JSON, caller frees. */
static char *plugin_input(const cJSON *list, const cJSON *plugin, const cJSON *prev,
                          const drv_cni_pod_t *pod)
{
    _cleanup_cjson_ cJSON *conf = cJSON_Duplicate(plugin, true);
    if (conf == NULL)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(conf, "runtimeConfig");
    cJSON_DeleteItemFromObjectCaseSensitive(conf, "prevResult");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(list, "name");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(list, "cniVersion");
    if (!set_item(conf, "name", cJSON_CreateString(name->valuestring)) ||
        !set_item(conf, "cniVersion", cJSON_CreateString(ver->valuestring)))
        return NULL;
    if (prev && !set_item(conf, "prevResult", cJSON_Duplicate(prev, true)))
        return NULL;
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(plugin, "capabilities");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(caps, "portMappings")) && pod->nports > 0) {
        cJSON *rt = cJSON_AddObjectToObject(conf, "runtimeConfig");
        cJSON *maps = rt ? cJSON_AddArrayToObject(rt, "portMappings") : NULL;
        if (maps == NULL)
            return NULL;
        for (size_t i = 0; i < pod->nports; i++) {
            const drv_cni_port_t *p = &pod->ports[i];
            cJSON *m = arr_add(maps, cJSON_CreateObject());
            if (!cJSON_AddNumberToObject(m, "hostPort", p->host_port) ||
                !cJSON_AddNumberToObject(m, "containerPort", p->container_port) ||
                !cJSON_AddStringToObject(m, "protocol", proto_name(p->protocol)))
                return NULL;
            if (p->host_ip && p->host_ip[0] && !cJSON_AddStringToObject(m, "hostIP", p->host_ip))
                return NULL;
        }
    }
    return cJSON_PrintUnformatted(conf);
}

static bool is_executable(const char *dir, const char *name)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof(path) && access(path, X_OK) == 0;
}

static drv_err_t iptables_check(drv_error_t *err)
{
    char dirs[] = PLUGIN_PATH;
    for (char *d = dirs; d != NULL;) {
        char *colon = strchr(d, ':');
        if (colon)
            *colon = '\0';
        if (d[0] && is_executable(d, "iptables"))
            return DRV_OK;
        d = colon ? colon + 1 : NULL;
    }
    return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                         "cni: iptables not found in %s: install the Debian package iptables (the "
                         "bridge plugin's ipMasq and portmap run it)",
                         PLUGIN_PATH);
}

/* Does any plugin of the list run iptables? */
static bool list_needs_iptables(const cJSON *list)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(list, "plugins"))
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        if (!strcmp(type->valuestring, "portmap") ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "ipMasq")))
            return true;
    }
    return false;
}

drv_err_t drv_cni_preflight(const drv_cni_config_t *cfg, drv_error_t *err)
{
    cni_settings_t s;
    drv_err_t rc = settings_of(cfg, false, &s, err);
    if (rc != DRV_OK)
        return rc;
    static const char *const need[] = {"bridge", "host-local", "portmap"};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!is_executable(s.plugin_dir, need[i]))
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "cni: plugin \"%s\" not found in %s: install the Debian package "
                                 "containernetworking-plugins",
                                 need[i], s.plugin_dir);
    return iptables_check(err);
}

/* Settings and the list to run: conflist if given, else built from cfg into *owned. */
static drv_err_t prepare(const drv_cni_config_t *cfg, const cJSON *conflist, cni_settings_t *s,
                         cJSON **owned, const cJSON **list, drv_error_t *err)
{
    drv_err_t rc = settings_of(cfg, conflist == NULL, s, err);
    if (rc != DRV_OK)
        return rc;
    if (conflist == NULL) {
        /* No recorded list (a DEL after a crash): the widest one, so that portmap's rules go
         * too if there were any. */
        rc = drv_cni_conflist_build(cfg, true, owned, err);
        if (rc != DRV_OK)
            return rc;
        conflist = *owned;
    }
    *list = conflist;
    return conflist_check(conflist, err);
}

/* Parses a stored prevResult; NULL (with a warning) if it is not a JSON object. */
static cJSON *parse_prev(const char *prev_result)
{
    if (prev_result == NULL)
        return NULL;
    size_t len = strlen(prev_result);
    cJSON *v = len <= DRV_CNI_RESULT_MAX ? parse_json_exact(prev_result, len) : NULL;
    if (v == NULL || !cJSON_IsObject(v)) {
        drv_log_warn("ignoring unreadable CNI prevResult", NULL);
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Runs command for one plugin, the list's position i. out may be NULL (output discarded). */
static drv_err_t run_one(const cni_settings_t *s, const cJSON *list, const cJSON *plugin,
                         const char *command, const cJSON *prev, const drv_cni_pod_t *pod,
                         char **out, size_t *outlen, drv_error_t *err)
{
    const char *type = cJSON_GetObjectItemCaseSensitive(plugin, "type")->valuestring;
    _cleanup_free_ char *input = plugin_input(list, plugin, prev, pod);
    if (input == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "cni %s %s: building its input", type, command);
    _cleanup_free_ char *output = NULL;
    size_t len = 0;
    drv_err_t rc = run_plugin(s, type, command, pod, input, &output, &len, err);
    if (rc != DRV_OK)
        return rc;
    if (out) {
        *out = TAKE_PTR(output);
        *outlen = len;
    }
    return DRV_OK;
}

static drv_err_t del_list(const cni_settings_t *s, const cJSON *list, const drv_cni_pod_t *pod,
                          const cJSON *prev, drv_error_t *err)
{
    drv_err_t first = DRV_OK;
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(list, "plugins");
    for (int i = cJSON_GetArraySize(plugins) - 1; i >= 0; i--) {
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t rc =
            run_one(s, list, cJSON_GetArrayItem(plugins, i), "DEL", prev, pod, NULL, NULL, &e);
        if (rc != DRV_OK && first == DRV_OK) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    return first;
}

drv_err_t drv_cni_add(const drv_cni_config_t *cfg, const cJSON *conflist, const drv_cni_pod_t *pod,
                      drv_cni_result_t *out, drv_error_t *err)
{
    cni_settings_t s;
    _cleanup_cjson_ cJSON *owned = NULL;
    const cJSON *list = NULL;
    drv_err_t rc = prepare(cfg, conflist, &s, &owned, &list, err);
    if (rc == DRV_OK)
        rc = pod_validate(pod, true, err);
    if (rc == DRV_OK && list_needs_iptables(list))
        rc = iptables_check(err);
    if (rc != DRV_OK)
        return rc;

    _cleanup_cjson_ cJSON *prev = NULL;
    _cleanup_free_ char *last = NULL;
    size_t last_len = 0;
    const char *last_type = "";
    const cJSON *plugin;
    cJSON_ArrayForEach(plugin, cJSON_GetObjectItemCaseSensitive(list, "plugins"))
    {
        last_type = cJSON_GetObjectItemCaseSensitive(plugin, "type")->valuestring;
        char *output = NULL;
        size_t len = 0;
        rc = run_one(&s, list, plugin, "ADD", prev, pod, &output, &len, err);
        if (rc != DRV_OK)
            break;
        free(last);
        last = output;
        last_len = len;
        cJSON *next = len <= DRV_CNI_RESULT_MAX ? parse_json_exact(output, len) : NULL;
        if (next == NULL || !cJSON_IsObject(next)) {
            cJSON_Delete(next);
            char head[64];
            clean_text(output, len < 40 ? len : 40, head, sizeof(head));
            rc = drv_error_set(err, DRV_ERR_PROTO, 0,
                               "cni %s ADD: result is not a JSON object (starts \"%s\")", last_type,
                               head);
            break;
        }
        cJSON_Delete(prev);
        prev = next;
    }
    drv_cni_result_t res;
    memset(&res, 0, sizeof(res));
    if (rc == DRV_OK) {
        rc = drv_cni_result_parse(last, last_len, &res, err);
        if (rc != DRV_OK)
            rc = drv_error_wrap(err, "cni %s ADD", last_type);
    }
    if (rc != DRV_OK) {
        /* All or nothing: undo what the plugins that ran may have done. */
        drv_error_t derr = DRV_ERROR_INIT;
        char q[DRV_ERROR_MSG_MAX + 64];
        if (del_list(&s, list, pod, prev, &derr) != DRV_OK)
            drv_log_warn("cni cleanup after failed ADD failed", "container=%s error=%s",
                         pod->container_id, drv_log_quote(drv_error_msg(&derr), q, sizeof(q)));
        return rc;
    }
    *out = res;
    return DRV_OK;
}

drv_err_t drv_cni_del(const drv_cni_config_t *cfg, const cJSON *conflist, const drv_cni_pod_t *pod,
                      const char *prev_result, drv_error_t *err)
{
    cni_settings_t s;
    _cleanup_cjson_ cJSON *owned = NULL;
    const cJSON *list = NULL;
    drv_err_t rc = prepare(cfg, conflist, &s, &owned, &list, err);
    if (rc == DRV_OK)
        rc = pod_validate(pod, false, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_cjson_ cJSON *prev = parse_prev(prev_result);
    return del_list(&s, list, pod, prev, err);
}

/* portmap up to v1.1.1 (Debian 12) checks for ip6tables rules it never made when the pod has
 * only IPv4 (containernetworking/plugins#819); its IPv4 check runs first, so this particular
 * failure on an IPv4-only result means the IPv4 mappings are fine. */
static bool portmap_v6_check_bug(const cJSON *plugin, const cJSON *prev, const drv_error_t *e)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(plugin, "type");
    if (strcmp(type->valuestring, "portmap") != 0 || strstr(e->msg, "check ipv6") == NULL)
        return false;
    const cJSON *ip;
    cJSON_ArrayForEach(ip, cJSON_GetObjectItemCaseSensitive(prev, "ips"))
    {
        const cJSON *addr = cJSON_GetObjectItemCaseSensitive(ip, "address");
        if (!cJSON_IsString(addr) || strchr(addr->valuestring, ':') != NULL)
            return false;
    }
    return true;
}

drv_err_t drv_cni_check(const drv_cni_config_t *cfg, const cJSON *conflist,
                        const drv_cni_pod_t *pod, const char *prev_result, drv_error_t *err)
{
    cni_settings_t s;
    _cleanup_cjson_ cJSON *owned = NULL;
    const cJSON *list = NULL;
    drv_err_t rc = prepare(cfg, conflist, &s, &owned, &list, err);
    if (rc == DRV_OK)
        rc = pod_validate(pod, true, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_cjson_ cJSON *prev = parse_prev(prev_result);
    if (prev == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "cni CHECK: the ADD result is needed");
    const cJSON *plugin;
    cJSON_ArrayForEach(plugin, cJSON_GetObjectItemCaseSensitive(list, "plugins"))
    {
        drv_error_t e = DRV_ERROR_INIT;
        rc = run_one(&s, list, plugin, "CHECK", prev, pod, NULL, NULL, &e);
        if (rc != DRV_OK && portmap_v6_check_bug(plugin, prev, &e)) {
            drv_log_debug("ignoring portmap's IPv6 CHECK of an IPv4-only pod", "container=%s",
                          pod->container_id);
            rc = DRV_OK;
        }
        if (rc != DRV_OK) {
            if (err)
                *err = e;
            return rc;
        }
    }
    return DRV_OK;
}
