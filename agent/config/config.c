/* The agent's configuration file: defaults, then the file's keys, each checked. */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "config/config.h"
#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/doc.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/namelist.h"
#include "drover/names.h"
#include "drover/quantity.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

/* A literal default into a fixed field: whether it fits is checked when compiling. */
#define SET_LITERAL(field, lit)                                                                    \
    do {                                                                                           \
        _Static_assert(sizeof(lit) <= sizeof(field), #field " too small for " lit);                \
        memcpy((field), (lit), sizeof(lit));                                                       \
    } while (0)

/* Zeroes [from, to) of cfg. */
#define ZERO_SPAN(cfg, from, to)                                                                   \
    memset((char *)(cfg) + offsetof(drv_agent_config_t, from), 0,                                  \
           offsetof(drv_agent_config_t, to) - offsetof(drv_agent_config_t, from))

void drv_agent_config_defaults(drv_agent_config_t *cfg)
{
    /* Everything but the registry, mirror and label tables (about 54 KB), whose entries past
     * n_registries, n_mirrors and n_labels are never read: the long-running agent's
     * configuration is a mapping of its own (agent/cmd/run.c), and its unused entries then
     * stay pages never written (issue 19: the idle footprint). */
    _Static_assert(
        offsetof(drv_agent_config_t, registries) < offsetof(drv_agent_config_t, n_registries) &&
            offsetof(drv_agent_config_t, n_registries) < offsetof(drv_agent_config_t, mirrors) &&
            offsetof(drv_agent_config_t, mirrors) < offsetof(drv_agent_config_t, n_mirrors) &&
            offsetof(drv_agent_config_t, n_mirrors) < offsetof(drv_agent_config_t, labels) &&
            offsetof(drv_agent_config_t, labels) < offsetof(drv_agent_config_t, n_labels),
        "the tables' order in drv_agent_config_t");
    memset(cfg, 0, offsetof(drv_agent_config_t, registries));
    ZERO_SPAN(cfg, n_registries, mirrors);
    ZERO_SPAN(cfg, n_mirrors, labels);
    memset((char *)cfg + offsetof(drv_agent_config_t, n_labels), 0,
           sizeof(*cfg) - offsetof(drv_agent_config_t, n_labels));
    if (gethostname(cfg->node_name, sizeof(cfg->node_name) - 1) != 0 || !cfg->node_name[0])
        SET_LITERAL(cfg->node_name, "localhost");
    /* Node names follow DNS rules: lower-case what the host calls itself. */
    for (char *p = cfg->node_name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    SET_LITERAL(cfg->state_dir, "/var/lib/drover");
    SET_LITERAL(cfg->run_dir, "/run/drover");
    SET_LITERAL(cfg->manifest_dir, "/etc/drover/manifests");
    SET_LITERAL(cfg->log_level, "info");
    SET_LITERAL(cfg->crun_path, "crun");
    SET_LITERAL(cfg->seccomp_profile, "/usr/share/containers/seccomp.json");
    SET_LITERAL(cfg->pod_subnet, "10.88.0.0/16");
    SET_LITERAL(cfg->bridge, "drover0");
    cfg->cluster_network = true;
    SET_LITERAL(cfg->wg_interface, "drover-wg");
    SET_LITERAL(cfg->cni_plugin_dir, "/usr/lib/cni");
    cfg->cgroups = DRV_CGROUPS_AUTO;
    cfg->log_max_bytes = 10u * 1024 * 1024;
    cfg->log_max_files = 2;
    cfg->max_layer_bytes = 8ull * 1024 * 1024 * 1024;
    cfg->gc_high_percent = 85;
    cfg->gc_low_percent = 75;
    cfg->default_pids_limit = 1024;
    cfg->hub_heartbeat_s = 2;
    cfg->hub_keepalive_s = 10;
    cfg->metrics_interval_s = 15;
    cfg->metrics_keepalive_s = 60;
}

/* Problems are collected, one per line, into a bounded buffer. */
struct cctx {
    drv_buf_t problems;
    const char *source;
    unsigned count;
};

static void problem(struct cctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct cctx *c, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->count++;
    /* A full buffer only loses later lines; the count still says the file is bad. */
    (void)!drv_buf_printf(&c->problems, "%s%s: %s: %s", c->problems.len ? "\n" : "", c->source, key,
                          msg);
}

/* key of o, named name in problems (a nested key's full path: "hub.url"). */
static void get_string_as(struct cctx *c, const cJSON *o, const char *key, const char *name,
                          char *out, size_t outsz)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!m)
        return;
    if (!cJSON_IsString(m)) {
        problem(c, name, "must be a string");
        return;
    }
    if (drv_fmt(out, outsz, "%s", m->valuestring) != DRV_OK)
        problem(c, name, "too long (at most %zu characters)", outsz - 1);
}

static void get_string(struct cctx *c, const cJSON *o, const char *key, char *out, size_t outsz)
{
    get_string_as(c, o, key, key, out, outsz);
}

static void get_path_as(struct cctx *c, const cJSON *o, const char *key, const char *name,
                        char *out, size_t outsz)
{
    char tmp[256] = "";
    get_string_as(c, o, key, name, tmp, sizeof(tmp) < outsz ? sizeof(tmp) : outsz);
    if (!tmp[0])
        return;
    if (tmp[0] != '/')
        problem(c, name, "must be an absolute path");
    else if (drv_fmt(out, outsz, "%s", tmp) != DRV_OK)
        problem(c, name, "too long (at most %zu characters)", outsz - 1);
}

static void get_path(struct cctx *c, const cJSON *o, const char *key, char *out, size_t outsz)
{
    get_path_as(c, o, key, key, out, outsz);
}

static void get_uint(struct cctx *c, const cJSON *o, const char *key, unsigned min, unsigned max,
                     unsigned *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!m)
        return;
    if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) || m->valuedouble < min ||
        m->valuedouble > max) {
        problem(c, key, "must be a whole number from %u to %u", min, max);
        return;
    }
    *out = (unsigned)m->valuedouble;
}

static void get_bool(struct cctx *c, const cJSON *o, const char *key, bool *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!m)
        return;
    if (!cJSON_IsBool(m)) {
        problem(c, key, "must be true or false");
        return;
    }
    *out = cJSON_IsTrue(m);
}

static void get_bytes(struct cctx *c, const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!m)
        return;
    char text[64];
    bool fits = cJSON_IsNumber(m)   ? drv_fmt(text, sizeof(text), "%.0f", m->valuedouble) == DRV_OK
                : cJSON_IsString(m) ? drv_fmt(text, sizeof(text), "%s", m->valuestring) == DRV_OK
                                    : false;
    if (!fits) {
        problem(c, key, "must be a size such as \"10Mi\"");
        return;
    }
    int64_t v;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_qty_parse_memory(text, &v, NULL, &err) != DRV_OK || v <= 0) {
        problem(c, key, "must be a size such as \"10Mi\": %s",
                err.code ? drv_error_msg(&err) : "must be positive");
        return;
    }
    *out = (uint64_t)v;
}

/* Reports every key of o not in known, a name list (drover/namelist.h). */
static void check_keys(struct cctx *c, const cJSON *o, const char *prefix, const char *known)
{
    for (const cJSON *m = o->child; m; m = m->next) {
        if (!drv_namelist_has(known, m->string)) {
            char key[300];
            drv_fmt_cut(key, sizeof(key), "%s%s", prefix, m->string);
            problem(c, key, "unknown key");
        }
    }
}

/* registries.mirrors.REGISTRY: {endpoint: [URL...], rewrite: {PATTERN: REPLACEMENT}}. */
static void parse_mirror(struct cctx *c, const cJSON *m, const char *key, drv_mirror_conf_t *mc)
{
    static const char known[] = "endpoint\0"
                                "rewrite\0";
    char name[DRV_REF_DOMAIN_MAX + 8], why[512];
    drv_mirror_endpoint_t probe;
    memset(mc, 0, sizeof(*mc));
    if (strcmp(m->string, "*") &&
        (drv_fmt(name, sizeof(name), "https://%s", m->string) != DRV_OK || strchr(m->string, '/') ||
         !drv_mirror_parse_endpoint(name, &probe, NULL, 0)))
        problem(c, key,
                "must be a registry as in image references (\"docker.io\", \"host:5000\") "
                "or \"*\" for every registry");
    else
        drv_fmt_cut(mc->registry, sizeof(mc->registry), "%s", m->string);
    if (!cJSON_IsObject(m)) {
        problem(c, key, "must be a mapping of endpoint, rewrite");
        return;
    }
    char prefix[DRV_REF_DOMAIN_MAX + 32];
    drv_fmt_cut(prefix, sizeof(prefix), "%s.", key);
    check_keys(c, m, prefix, known);
    char ekey0[DRV_REF_DOMAIN_MAX + 64], rkey0[DRV_REF_DOMAIN_MAX + 64];
    drv_fmt_cut(ekey0, sizeof(ekey0), "%sendpoint", prefix);
    drv_fmt_cut(rkey0, sizeof(rkey0), "%srewrite", prefix);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(m, "endpoint");
    if (eps && !cJSON_IsArray(eps))
        problem(c, ekey0, "must be a list of URLs (\"http://127.0.0.1:5000\")");
    size_t i = 0;
    for (const cJSON *e = eps && cJSON_IsArray(eps) ? eps->child : NULL; e; e = e->next, i++) {
        char ekey[DRV_REF_DOMAIN_MAX + 64];
        drv_fmt_cut(ekey, sizeof(ekey), "%sendpoint[%zu]", prefix, i);
        if (i >= DRV_MIRROR_MAX_ENDPOINTS) {
            problem(c, ekey, "at most %d endpoints", DRV_MIRROR_MAX_ENDPOINTS);
            break;
        }
        if (!cJSON_IsString(e))
            problem(c, ekey, "must be a string");
        else if (!drv_mirror_parse_endpoint(e->valuestring, &mc->endpoints[mc->n_endpoints], why,
                                            sizeof(why)))
            problem(c, ekey, "%s", why);
        else
            mc->n_endpoints++;
    }
    const cJSON *rws = cJSON_GetObjectItemCaseSensitive(m, "rewrite");
    if (rws && !cJSON_IsObject(rws))
        problem(c, rkey0, "must be a mapping of patterns to replacements");
    i = 0;
    for (const cJSON *r = rws && cJSON_IsObject(rws) ? rws->child : NULL; r; r = r->next, i++) {
        char rkey[DRV_REF_DOMAIN_MAX + DRV_MIRROR_PATTERN_MAX + 64];
        drv_fmt_cut(rkey, sizeof(rkey), "%srewrite.%.100s", prefix, r->string);
        drv_mirror_rewrite_t *rw = &mc->rewrites[mc->n_rewrites];
        if (i >= DRV_MIRROR_MAX_REWRITES) {
            problem(c, rkey, "at most %d rewrites", DRV_MIRROR_MAX_REWRITES);
            break;
        }
        if (!cJSON_IsString(r))
            problem(c, rkey, "must be a string (the replacement)");
        else if (drv_fmt(rw->pattern, sizeof(rw->pattern), "%s", r->string) != DRV_OK ||
                 drv_fmt(rw->replace, sizeof(rw->replace), "%s", r->valuestring) != DRV_OK)
            problem(c, rkey, "too long (at most %d characters each side)",
                    DRV_MIRROR_PATTERN_MAX - 1);
        else if (!drv_mirror_check_rewrite(rw->pattern, rw->replace, why, sizeof(why)))
            problem(c, rkey, "%s", why);
        else
            mc->n_rewrites++;
    }
}

/* registries.configs.HOST: {auth: {username, password}}: credentials, as a list entry's. */
static void parse_registry_config(struct cctx *c, const cJSON *h, const char *key,
                                  drv_agent_config_t *cfg)
{
    static const char known[] = "auth\0"
                                "tls\0"; /* tls: refused below */
    static const char auth_known[] = "username\0"
                                     "password\0";
    char prefix[320], name[340];
    drv_fmt_cut(prefix, sizeof(prefix), "%s.", key);
    if (!cJSON_IsObject(h)) {
        problem(c, key, "must be a mapping with auth");
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(h, "tls")) {
        drv_fmt_cut(name, sizeof(name), "%stls", prefix);
        problem(c, name,
                "not supported by Drover: certificates are checked against the system's CAs; "
                "for plain HTTP give the mirror an http:// endpoint");
    }
    check_keys(c, h, prefix, known);
    if (cfg->n_registries >= DRV_CONFIG_MAX_REGISTRIES) {
        problem(c, key, "at most %d registries", DRV_CONFIG_MAX_REGISTRIES);
        return;
    }
    drv_registry_conf_t *rc = &cfg->registries[cfg->n_registries];
    memset(rc, 0, sizeof(*rc));
    unsigned before = c->count;
    if (strchr(h->string, '/') || strpbrk(h->string, " \t@") || !h->string[0] ||
        drv_fmt(rc->host, sizeof(rc->host), "%s", h->string) != DRV_OK)
        problem(c, key, "must be a registry as \"host[:port]\"");
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(h, "auth");
    drv_fmt_cut(name, sizeof(name), "%sauth", prefix);
    if (auth && !cJSON_IsObject(auth)) {
        problem(c, name, "must be a mapping of username, password");
    } else if (auth) {
        char aprefix[360];
        drv_fmt_cut(aprefix, sizeof(aprefix), "%s.", name);
        check_keys(c, auth, aprefix, auth_known);
        char un[360], pw[360];
        drv_fmt_cut(un, sizeof(un), "%susername", aprefix);
        drv_fmt_cut(pw, sizeof(pw), "%spassword", aprefix);
        get_string_as(c, auth, "username", un, rc->username, sizeof(rc->username));
        get_string_as(c, auth, "password", pw, rc->password, sizeof(rc->password));
    }
    if (!rc->username[0] || !rc->password[0])
        problem(c, name, "username and password: both required");
    if (c->count == before)
        cfg->n_registries++;
}

/* registries in K3s's registries.yaml form: {mirrors: {REGISTRY: ...}, configs: {HOST: ...}}.
 * An http:// endpoint is spoken to in plain HTTP, as containerd does. */
static void parse_registries_k3s(struct cctx *c, const cJSON *regs, drv_agent_config_t *cfg)
{
    static const char known[] = "mirrors\0"
                                "configs\0";
    check_keys(c, regs, "registries.", known);
    const cJSON *mirrors = cJSON_GetObjectItemCaseSensitive(regs, "mirrors");
    if (mirrors && !cJSON_IsObject(mirrors))
        problem(c, "registries.mirrors",
                "must be a mapping of registries (\"docker.io\", \"*\") to {endpoint, rewrite}");
    for (const cJSON *m = mirrors && cJSON_IsObject(mirrors) ? mirrors->child : NULL; m;
         m = m->next) {
        char key[DRV_REF_DOMAIN_MAX + 32];
        drv_fmt_cut(key, sizeof(key), "registries.mirrors.%.200s", m->string);
        if (cfg->n_mirrors >= DRV_MIRROR_MAX) {
            problem(c, key, "at most %d registries with mirrors", DRV_MIRROR_MAX);
            break;
        }
        unsigned before = c->count;
        parse_mirror(c, m, key, &cfg->mirrors[cfg->n_mirrors]);
        if (c->count == before)
            cfg->n_mirrors++;
    }
    const cJSON *configs = cJSON_GetObjectItemCaseSensitive(regs, "configs");
    if (configs && !cJSON_IsObject(configs))
        problem(c, "registries.configs", "must be a mapping of registries to {auth}");
    for (const cJSON *h = configs && cJSON_IsObject(configs) ? configs->child : NULL; h;
         h = h->next) {
        char key[300];
        drv_fmt_cut(key, sizeof(key), "registries.configs.%.200s", h->string);
        parse_registry_config(c, h, key, cfg);
    }
}

static void parse_registries(struct cctx *c, const cJSON *regs, drv_agent_config_t *cfg)
{
    static const char known[] = "host\0"
                                "insecure\0"
                                "username\0"
                                "password\0";
    if (cJSON_IsObject(regs)) {
        parse_registries_k3s(c, regs, cfg);
        return;
    }
    if (!cJSON_IsArray(regs)) {
        problem(c, "registries",
                "must be a list of {host, insecure, username, password}, or a mapping of "
                "mirrors and configs (K3s's registries.yaml)");
        return;
    }
    size_t i = 0;
    for (const cJSON *r = regs->child; r; r = r->next, i++) {
        char key[64];
        drv_fmt_cut(key, sizeof(key), "registries[%zu]", i);
        if (i >= DRV_CONFIG_MAX_REGISTRIES) {
            problem(c, key, "at most %d registries", DRV_CONFIG_MAX_REGISTRIES);
            return;
        }
        if (!cJSON_IsObject(r)) {
            problem(c, key, "must be a mapping");
            continue;
        }
        char prefix[80];
        drv_fmt_cut(prefix, sizeof(prefix), "%s.", key);
        check_keys(c, r, prefix, known);
        drv_registry_conf_t *rc = &cfg->registries[cfg->n_registries];
        memset(rc, 0, sizeof(*rc));
        unsigned before = c->count;
        get_string(c, r, "host", rc->host, sizeof(rc->host));
        get_bool(c, r, "insecure", &rc->insecure);
        get_string(c, r, "username", rc->username, sizeof(rc->username));
        get_string(c, r, "password", rc->password, sizeof(rc->password));
        if (!rc->host[0] || strpbrk(rc->host, "/ \t@"))
            problem(c, key, "host: required, as \"host[:port]\"");
        if (!rc->username[0] != !rc->password[0])
            problem(c, key, "username and password go together");
        if (c->count == before)
            cfg->n_registries++;
    }
}

/* HOST:PORT with nothing after it (no user, path, query); port 1-65535, required unless
 * port_optional. */
static bool host_port_ok(const char *hp, bool port_optional)
{
    if (!*hp || strpbrk(hp, "/ \t@?#"))
        return false;
    const char *colon = strrchr(hp, ':');
    if (colon && strchr(hp, ']') > colon)
        colon = NULL; /* the colons of a bracketed IPv6 address */
    if (!colon)
        return port_optional;
    if (colon == hp || !colon[1] || strlen(colon + 1) > 5)
        return false;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return port >= 1 && port <= 65535;
}

/* tcp://HOST:PORT (mqtt:// is the same) for plain MQTT; ssl:// or mqtts:// for MQTT over TLS
 * with the node's certificate (agent/enroll/). */
static bool broker_uri_ok(const char *uri)
{
    static const char schemes[] = "tcp://\0"
                                  "mqtt://\0"
                                  "ssl://\0"
                                  "mqtts://\0";
    for (const char *s = schemes; s; s = drv_namelist_next(s))
        if (!strncmp(uri, s, strlen(s)))
            return host_port_ok(uri + strlen(s), false);
    return false;
}

/* https://HOST[:PORT], an optional trailing "/" dropped. */
static bool hub_url_ok(char *url)
{
    if (strncmp(url, "https://", 8))
        return false;
    size_t n = strlen(url);
    if (n > 8 && url[n - 1] == '/')
        url[n - 1] = '\0';
    return host_port_ok(url + 8, true);
}

/* "sha256:" and 64 hex digits (either case; stored lower-case, as drover-hub prints it). */
static bool fingerprint_ok(char *fp)
{
    if (strncasecmp(fp, "sha256:", 7) || strlen(fp) != 7 + 64)
        return false;
    for (char *p = fp + 7; *p; p++) {
        if (!isxdigit((unsigned char)*p))
            return false;
        *p = (char)tolower((unsigned char)*p);
    }
    memcpy(fp, "sha256:", 7);
    return true;
}

static void parse_hub_identity(struct cctx *c, const cJSON *hub, drv_agent_config_t *cfg)
{
    get_string_as(c, hub, "url", "hub.url", cfg->hub_url, sizeof(cfg->hub_url));
    if (cfg->hub_url[0] && !hub_url_ok(cfg->hub_url))
        problem(c, "hub.url", "\"%.200s\" must be https://HOST[:PORT]", cfg->hub_url);
    /* Read wider than the field, so that a digit too many is "must be", not "too long". */
    char fp[128] = "";
    get_string_as(c, hub, "caFingerprint", "hub.caFingerprint", fp, sizeof(fp));
    bool fp_given = cJSON_GetObjectItemCaseSensitive(hub, "caFingerprint") != NULL;
    if (fp[0] && !fingerprint_ok(fp))
        problem(c, "hub.caFingerprint",
                "must be \"sha256:\" and 64 hex digits, as drover-hub prints it");
    else if (fp[0])
        memcpy(cfg->hub_ca_fingerprint, fp, 7 + 64 + 1); /* checked: exactly that long */
    get_string_as(c, hub, "token", "hub.token", cfg->hub_token, sizeof(cfg->hub_token));
    if (cfg->hub_token[0] &&
        (strncmp(cfg->hub_token, "drv1_", 5) || strpbrk(cfg->hub_token, " \t\r\n\"\\")))
        problem(c, "hub.token",
                "must be a bootstrap token \"drv1_...\" (from drover token create)");
    get_path_as(c, hub, "tokenFile", "hub.tokenFile", cfg->hub_token_file,
                sizeof(cfg->hub_token_file));
    if (cfg->hub_token[0] && cfg->hub_token_file[0])
        problem(c, "hub.tokenFile", "give hub.token or hub.tokenFile, not both");
    if (cfg->hub_url[0] && !cfg->hub_ca_fingerprint[0] && !fp_given)
        problem(c, "hub.caFingerprint", "required with hub.url (what drover-hub prints at start)");
    if (!cfg->hub_url[0] &&
        (cfg->hub_ca_fingerprint[0] || cfg->hub_token[0] || cfg->hub_token_file[0]))
        problem(c, "hub.url",
                "required with hub.caFingerprint, hub.token and hub.tokenFile (the hub's API)");
}

static void parse_hub(struct cctx *c, const cJSON *hub, drv_agent_config_t *cfg)
{
    static const char known[] = "broker\0"
                                "heartbeatSeconds\0"
                                "keepaliveSeconds\0"
                                "url\0"
                                "caFingerprint\0"
                                "token\0"
                                "tokenFile\0";
    if (!cJSON_IsObject(hub)) {
        problem(c, "hub",
                "must be a mapping of broker, heartbeatSeconds, keepaliveSeconds, url, "
                "caFingerprint, token, tokenFile");
        return;
    }
    check_keys(c, hub, "hub.", known);
    char broker[sizeof(cfg->hub_broker)] = "";
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(hub, "broker");
    if (b && !cJSON_IsString(b))
        problem(c, "hub.broker", "must be a string");
    else if (b && strlen(b->valuestring) >= sizeof(broker))
        problem(c, "hub.broker", "too long (at most %zu characters)", sizeof(broker) - 1);
    else if (b && !broker_uri_ok(b->valuestring))
        problem(c, "hub.broker", "\"%.200s\" must be tcp://HOST:PORT or ssl://HOST:PORT",
                b->valuestring);
    else if (b && drv_fmt(cfg->hub_broker, sizeof(cfg->hub_broker), "%s", b->valuestring) != DRV_OK)
        problem(c, "hub.broker", "too long (at most %zu characters)", sizeof(broker) - 1);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(hub, "heartbeatSeconds");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(hub, "keepaliveSeconds");
    if (h && (!cJSON_IsNumber(h) || h->valuedouble != floor(h->valuedouble) || h->valuedouble < 1 ||
              h->valuedouble > 3600))
        problem(c, "hub.heartbeatSeconds", "must be a whole number from 1 to 3600");
    else if (h)
        cfg->hub_heartbeat_s = (unsigned)h->valuedouble;
    if (k && (!cJSON_IsNumber(k) || k->valuedouble != floor(k->valuedouble) || k->valuedouble < 2 ||
              k->valuedouble > 3600))
        problem(c, "hub.keepaliveSeconds", "must be a whole number from 2 to 3600");
    else if (k)
        cfg->hub_keepalive_s = (unsigned)k->valuedouble;
    parse_hub_identity(c, hub, cfg);
    /* An enrolled node speaks TLS with its certificate; a plain URL would silently not. */
    if (cfg->hub_url[0] && cfg->hub_broker[0] && strncmp(cfg->hub_broker, "ssl://", 6) &&
        strncmp(cfg->hub_broker, "mqtts://", 8))
        problem(c, "hub.broker",
                "\"%.200s\": must be ssl://HOST:PORT (or mqtts://) with hub.url: an enrolled node "
                "connects with its certificate",
                cfg->hub_broker);
}

/* metrics: {intervalSeconds, keepaliveSeconds}: usage pushed to the hub (docs/PROTOCOL.md). */
static void parse_metrics(struct cctx *c, const cJSON *m, drv_agent_config_t *cfg)
{
    static const char known[] = "intervalSeconds\0"
                                "keepaliveSeconds\0";
    if (!cJSON_IsObject(m)) {
        problem(c, "metrics", "must be a mapping of intervalSeconds, keepaliveSeconds");
        return;
    }
    check_keys(c, m, "metrics.", known);
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(m, "intervalSeconds");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(m, "keepaliveSeconds");
    int64_t v;
    if (i && (!cJSON_IsNumber(i) || !drv_json_to_int(i->valuedouble, 0, 3600, &v)))
        problem(c, "metrics.intervalSeconds", "must be a whole number from 0 (off) to 3600");
    else if (i)
        cfg->metrics_interval_s = (unsigned)v;
    if (k && (!cJSON_IsNumber(k) || !drv_json_to_int(k->valuedouble, 1, 86400, &v)))
        problem(c, "metrics.keepaliveSeconds", "must be a whole number from 1 to 86400");
    else if (k)
        cfg->metrics_keepalive_s = (unsigned)v;
    if (cfg->metrics_interval_s && cfg->metrics_keepalive_s < cfg->metrics_interval_s)
        problem(c, "metrics.keepaliveSeconds", "must not be shorter than metrics.intervalSeconds");
}

/* storage: {dir}: where the directories of PersistentVolumeClaims live (agent/pod/pvc.h). */
static void parse_storage(struct cctx *c, const cJSON *n, drv_agent_config_t *cfg)
{
    static const char known[] = "dir\0";
    if (!cJSON_IsObject(n)) {
        problem(c, "storage", "must be a mapping of dir");
        return;
    }
    check_keys(c, n, "storage.", known);
    get_path_as(c, n, "dir", "storage.dir", cfg->storage_dir, sizeof(cfg->storage_dir));
}

static void parse_network(struct cctx *c, const cJSON *n, drv_agent_config_t *cfg)
{
    static const char known[] = "mode\0"
                                "wireguardInterface\0"
                                "toolDir\0";
    if (!cJSON_IsObject(n)) {
        problem(c, "network", "must be a mapping of mode, wireguardInterface, toolDir");
        return;
    }
    check_keys(c, n, "network.", known);
    char mode[16] = "";
    get_string_as(c, n, "mode", "network.mode", mode, sizeof(mode));
    if (!strcmp(mode, "auto"))
        cfg->cluster_network = true;
    else if (!strcmp(mode, "off"))
        cfg->cluster_network = false;
    else if (mode[0])
        problem(c, "network.mode", "must be auto or off");
    get_string_as(c, n, "wireguardInterface", "network.wireguardInterface", cfg->wg_interface,
                  sizeof(cfg->wg_interface));
    size_t len = strlen(cfg->wg_interface);
    if (len == 0 || len > 15 ||
        strspn(cfg->wg_interface, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789_.-") != len)
        problem(c, "network.wireguardInterface",
                "\"%s\" must be an interface name: 1-15 letters, digits, '_', '.' or '-'",
                cfg->wg_interface);
    get_path_as(c, n, "toolDir", "network.toolDir", cfg->wg_tool_dir, sizeof(cfg->wg_tool_dir));
}

static void parse_labels(struct cctx *c, const cJSON *labels, drv_agent_config_t *cfg)
{
    if (!cJSON_IsObject(labels)) {
        problem(c, "labels", "must be a mapping of label names to values");
        return;
    }
    cfg->n_labels = 0;
    for (const cJSON *l = labels->child; l; l = l->next) {
        char key[360], why[512];
        drv_fmt_cut(key, sizeof(key), "labels.%.300s", l->string);
        if (cfg->n_labels >= DRV_CONFIG_MAX_LABELS) {
            problem(c, key, "at most %d labels", DRV_CONFIG_MAX_LABELS);
            return;
        }
        if (!drv_name_label_key(l->string, why, sizeof(why)) ||
            strlen(l->string) >= sizeof(cfg->labels[0].key)) {
            problem(c, key, "not a valid label name: %s", why);
            continue;
        }
        if (!cJSON_IsString(l)) {
            problem(c, key, "must be a string (quote numbers and booleans)");
            continue;
        }
        if (!drv_name_label_value(l->valuestring, why, sizeof(why)) ||
            strlen(l->valuestring) >= sizeof(cfg->labels[0].value)) {
            problem(c, key, "not a valid label value: %s", why);
            continue;
        }
        drv_label_conf_t *lc = &cfg->labels[cfg->n_labels];
        if (drv_fmt(lc->key, sizeof(lc->key), "%s", l->string) != DRV_OK ||
            drv_fmt(lc->value, sizeof(lc->value), "%s", l->valuestring) != DRV_OK) {
            problem(c, key, "too long");
            continue;
        }
        cfg->n_labels++;
    }
}

drv_err_t drv_agent_config_parse(const char *source, const char *text, size_t len,
                                 drv_agent_config_t *cfg, drv_error_t *err)
{
    static const char known[] = "nodeName\0"
                                "stateDir\0"
                                "runDir\0"
                                "manifestDir\0"
                                "platform\0"
                                "logLevel\0"
                                "cgroups\0"
                                "allowNoCgroups\0"
                                "crun\0"
                                "seccompProfile\0"
                                "podSubnet\0"
                                "bridge\0"
                                "cniPluginDir\0"
                                "containerLogMaxBytes\0"
                                "containerLogMaxFiles\0"
                                "maxLayerBytes\0"
                                "imageGCHighPercent\0"
                                "imageGCLowPercent\0"
                                "pidsLimit\0"
                                "registries\0"
                                "hub\0"
                                "labels\0"
                                "metrics\0"
                                "network\0"
                                "storage\0";
    drv_doc_list_t docs = {0};
    drv_error_t perr = DRV_ERROR_INIT;
    if (drv_doc_parse(text, len, NULL, &docs, &perr) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s", source, drv_error_msg(&perr));
    if (docs.count > 1 || (docs.count == 1 && !cJSON_IsObject(docs.docs[0].root))) {
        drv_doc_list_free(&docs);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must hold one mapping of settings",
                             source);
    }
    /* Parsed in place, over a copy kept to put cfg back as it was on error. Not into a copy
     * assigned to cfg at the end: that would write every page of cfg, the unused table entries
     * too, which on the long-running agent are pages never written (drv_agent_config_defaults).
     * The copy is on the heap and freed before the agent runs (issue 19). */
    _cleanup_free_ drv_agent_config_t *saved = malloc(sizeof(*saved));
    if (!saved) {
        drv_doc_list_free(&docs);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "%s: out of memory", source);
    }
    *saved = *cfg;
    struct cctx c = {.problems = DRV_BUF_INIT(16 * 1024), .source = source};
    const cJSON *o = docs.count ? docs.docs[0].root : NULL;
    if (o) {
        check_keys(&c, o, "", known);
        get_string(&c, o, "nodeName", cfg->node_name, sizeof(cfg->node_name));
        char why[512];
        if (drv_name_node_is_pattern(cfg->node_name)) {
            /* Filled from the device at the first start (config/nodename.h). */
            if (!drv_name_node_pattern(cfg->node_name, why, sizeof(why)))
                problem(&c, "nodeName", "\"%s\" is not a valid node name pattern: %s",
                        cfg->node_name, why);
            if (drv_fmt(cfg->node_name_pattern, sizeof(cfg->node_name_pattern), "%s",
                        cfg->node_name) != DRV_OK)
                problem(&c, "nodeName", "too long (at most %zu characters)",
                        sizeof(cfg->node_name_pattern) - 1);
            cfg->node_name[0] = '\0';
        } else {
            cfg->node_name_pattern[0] = '\0';
            if (!drv_name_dns_subdomain(cfg->node_name, why, sizeof(why)) ||
                strlen(cfg->node_name) > DRV_NAME_NODE_MAX)
                problem(&c, "nodeName", "\"%s\" is not a valid node name: %s", cfg->node_name,
                        strlen(cfg->node_name) > DRV_NAME_NODE_MAX ? "at most 63 characters" : why);
        }
        get_path(&c, o, "stateDir", cfg->state_dir, sizeof(cfg->state_dir));
        get_path(&c, o, "runDir", cfg->run_dir, sizeof(cfg->run_dir));
        get_path(&c, o, "manifestDir", cfg->manifest_dir, sizeof(cfg->manifest_dir));
        get_string(&c, o, "platform", cfg->platform, sizeof(cfg->platform));
        get_string(&c, o, "logLevel", cfg->log_level, sizeof(cfg->log_level));
        if (strcmp(cfg->log_level, "debug") && strcmp(cfg->log_level, "info") &&
            strcmp(cfg->log_level, "warn") && strcmp(cfg->log_level, "error"))
            problem(&c, "logLevel", "must be debug, info, warn or error");
        char cg[16] = "";
        get_string(&c, o, "cgroups", cg, sizeof(cg));
        if (!strcmp(cg, "auto"))
            cfg->cgroups = DRV_CGROUPS_AUTO;
        else if (!strcmp(cg, "required"))
            cfg->cgroups = DRV_CGROUPS_REQUIRED;
        else if (!strcmp(cg, "disabled"))
            cfg->cgroups = DRV_CGROUPS_DISABLED;
        else if (cg[0])
            problem(&c, "cgroups", "must be auto, required or disabled");
        get_bool(&c, o, "allowNoCgroups", &cfg->allow_no_cgroups);
        get_string(&c, o, "crun", cfg->crun_path, sizeof(cfg->crun_path));
        get_path(&c, o, "seccompProfile", cfg->seccomp_profile, sizeof(cfg->seccomp_profile));
        get_string(&c, o, "podSubnet", cfg->pod_subnet, sizeof(cfg->pod_subnet));
        get_string(&c, o, "bridge", cfg->bridge, sizeof(cfg->bridge));
        get_path(&c, o, "cniPluginDir", cfg->cni_plugin_dir, sizeof(cfg->cni_plugin_dir));
        get_bytes(&c, o, "containerLogMaxBytes", &cfg->log_max_bytes);
        get_uint(&c, o, "containerLogMaxFiles", 0, 100, &cfg->log_max_files);
        get_bytes(&c, o, "maxLayerBytes", &cfg->max_layer_bytes);
        get_uint(&c, o, "imageGCHighPercent", 1, 100, &cfg->gc_high_percent);
        get_uint(&c, o, "imageGCLowPercent", 1, 100, &cfg->gc_low_percent);
        if (cfg->gc_low_percent > cfg->gc_high_percent)
            problem(&c, "imageGCLowPercent", "must not be above imageGCHighPercent");
        get_uint(&c, o, "pidsLimit", 16, 4194304, &cfg->default_pids_limit);
        const cJSON *regs = cJSON_GetObjectItemCaseSensitive(o, "registries");
        if (regs) {
            cfg->n_registries = 0;
            cfg->n_mirrors = 0;
            parse_registries(&c, regs, cfg);
        }
        const cJSON *hub = cJSON_GetObjectItemCaseSensitive(o, "hub");
        if (hub)
            parse_hub(&c, hub, cfg);
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(o, "labels");
        if (labels)
            parse_labels(&c, labels, cfg);
        const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(o, "metrics");
        if (metrics)
            parse_metrics(&c, metrics, cfg);
        const cJSON *network = cJSON_GetObjectItemCaseSensitive(o, "network");
        if (network)
            parse_network(&c, network, cfg);
        const cJSON *storage = cJSON_GetObjectItemCaseSensitive(o, "storage");
        if (storage)
            parse_storage(&c, storage, cfg);
    }
    drv_doc_list_free(&docs);
    if (c.count) {
        *cfg = *saved;
        drv_error_set(err, DRV_ERR_INVALID, 0, "%s", drv_buf_str(&c.problems));
        drv_buf_free(&c.problems);
        return DRV_ERR_INVALID;
    }
    drv_buf_free(&c.problems);
    return DRV_OK;
}

drv_err_t drv_agent_config_load(const char *path, drv_agent_config_t *cfg, drv_error_t *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_err_t r = drv_file_read_capped(path, CONFIG_MAX_BYTES, &text, &len, err);
    if (r != DRV_OK)
        return r;
    return drv_agent_config_parse(path, text, len, cfg, err);
}

const drv_registry_conf_t *drv_agent_config_registry(const drv_agent_config_t *cfg,
                                                     const char *host)
{
    for (size_t i = 0; i < cfg->n_registries; i++)
        if (!strcmp(cfg->registries[i].host, host))
            return &cfg->registries[i];
    return NULL;
}
