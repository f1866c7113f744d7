/* Node name patterns filled from the device and kept in the state directory (see nodename.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "config/nodename.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/names.h"

#define VALUE_MAX 128        /* a placeholder's value, as a label */
#define SOURCE_FILE_MAX 4096 /* serial-number, machine-id, hostname, address */
#define CPUINFO_MAX (1024 * 1024)
#define NET_IF_MAX 256

static const char *const serial_files[] = {"/proc/device-tree/serial-number",
                                           "/sys/firmware/devicetree/base/serial-number"};

/* Lower-cases s (len bytes) into a DNS label in out: runs of other characters become one '-',
 * none at either end. "" when nothing is left. */
static void to_label(const char *s, size_t len, char *out, size_t outsz)
{
    size_t n = 0;
    bool dash = false;
    for (size_t i = 0; i < len && n + 1 < outsz; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)s[i]);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && n > 0 && n + 2 < outsz)
                out[n++] = '-';
            dash = false;
            out[n++] = (char)c;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
}

/* root + path into out; false if it does not fit. */
static bool rooted(const char *root, const char *path, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s%s", root, path);
    return n > 0 && (size_t)n < outsz;
}

/* A small file's first token (up to a NUL or blank), trimmed; false if absent or empty. */
static bool read_token(const char *root, const char *path, char *out, size_t outsz)
{
    char full[1024];
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (!rooted(root, path, full, sizeof(full)) ||
        drv_file_read_capped(full, SOURCE_FILE_MAX, &text, &len, NULL) != DRV_OK)
        return false;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    size_t j = i;
    while (j < len && text[j] != '\0' && !isspace((unsigned char)text[j]))
        j++;
    if (j == i || j - i >= outsz)
        return false;
    memcpy(out, text + i, j - i);
    out[j - i] = '\0';
    return true;
}

static bool all_zero(const char *s)
{
    for (; *s; s++)
        if (*s != '0')
            return false;
    return true;
}

/* The "Serial : 10000000a1b2c3d4" line of /proc/cpuinfo (Raspberry Pi kernels). */
static bool cpuinfo_serial(const char *root, char *out, size_t outsz)
{
    char full[1024];
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (!rooted(root, "/proc/cpuinfo", full, sizeof(full)) ||
        drv_file_read_capped(full, CPUINFO_MAX, &text, &len, NULL) != DRV_OK)
        return false;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "Serial", 6)) {
            char *p = line + 6;
            p += strspn(p, " \t");
            if (*p == ':') {
                p++;
                p += strspn(p, " \t");
                size_t n = strcspn(p, " \t\r");
                if (n > 0 && n < outsz) {
                    memcpy(out, p, n);
                    out[n] = '\0';
                    return true;
                }
            }
        }
        line = next;
    }
    return false;
}

static bool serial_value(const char *root, char *out, size_t outsz, char *src, size_t srcsz)
{
    char raw[VALUE_MAX];
    for (size_t i = 0; i < sizeof(serial_files) / sizeof(serial_files[0]); i++) {
        if (read_token(root, serial_files[i], raw, sizeof(raw))) {
            to_label(raw, strlen(raw), out, outsz);
            if (*out && !all_zero(out)) {
                drv_fmt_cut(src, srcsz, "%s", serial_files[i]);
                return true;
            }
        }
    }
    if (cpuinfo_serial(root, raw, sizeof(raw))) {
        to_label(raw, strlen(raw), out, outsz);
        if (*out && !all_zero(out)) {
            drv_fmt_cut(src, srcsz, "/proc/cpuinfo Serial");
            return true;
        }
    }
    if (read_token(root, "/etc/machine-id", raw, sizeof(raw)) && strlen(raw) == 32 &&
        strspn(raw, "0123456789abcdefABCDEF") == 32 && !all_zero(raw)) {
        to_label(raw, strlen(raw), out, outsz);
        drv_fmt_cut(src, srcsz, "/etc/machine-id");
        return true;
    }
    return false;
}

static bool hostname_value(const char *root, char *out, size_t outsz, char *src, size_t srcsz)
{
    char raw[VALUE_MAX * 2];
    if (!read_token(root, "/proc/sys/kernel/hostname", raw, sizeof(raw)))
        return false;
    to_label(raw, strcspn(raw, "."), out, outsz);
    drv_fmt_cut(src, srcsz, "/proc/sys/kernel/hostname");
    return *out != '\0';
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "aa:bb:cc:dd:ee:ff" into "aabbccddeeff"; false for anything else or all zeros. */
static bool mac_hex(const char *s, char out[13])
{
    if (strlen(s) != 17)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (s[i] != ':')
                return false;
            continue;
        }
        if (!isxdigit((unsigned char)s[i]))
            return false;
        out[n++] = (char)tolower((unsigned char)s[i]);
    }
    out[n] = '\0';
    return !all_zero(out);
}

static bool mac_value(const char *root, char *out, size_t outsz, char *src, size_t srcsz)
{
    char dir[1024];
    if (!rooted(root, "/sys/class/net", dir, sizeof(dir)))
        return false;
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (!d)
        return false;
    char *names[NET_IF_MAX];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < NET_IF_MAX) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "lo"))
            continue;
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    qsort(names, n, sizeof(names[0]), name_cmp);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        char path[1400], addr[VALUE_MAX], hex[13];
        struct stat sb;
        /* Physical interfaces have a device; bridges, veths and tunnels do not. */
        if (!found && drv_fmt(path, sizeof(path), "%s/%s/device", dir, names[i]) == DRV_OK &&
            lstat(path, &sb) == 0 &&
            drv_fmt(path, sizeof(path), "/sys/class/net/%s/address", names[i]) == DRV_OK) {
            if (read_token(root, path, addr, sizeof(addr)) && mac_hex(addr, hex) &&
                drv_fmt(out, outsz, "%s", hex) == DRV_OK) {
                drv_fmt_cut(src, srcsz, "%.150s", path);
                found = true;
            }
        }
        free(names[i]);
    }
    return found;
}

drv_err_t drv_nodename_fill(const char *pattern, const char *root, char *out, size_t outsz,
                            char *source, size_t sourcesz, drv_error_t *err)
{
    char why[512];
    if (!drv_name_node_pattern(pattern, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "nodeName: \"%s\" is not a valid node name pattern: %s", pattern, why);
    char name[256] = "", srcs[512] = "";
    size_t n = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p != '{') {
            if (n + 1 < sizeof(name))
                name[n++] = *p;
            continue;
        }
        const char *end = strchr(p, '}'); /* checked above: each '{' has its '}' */
        char value[VALUE_MAX] = "", src[160] = "";
        bool ok = false;
        const char *what = "";
        if (!strncmp(p, "{serial}", 8)) {
            ok = serial_value(root, value, sizeof(value), src, sizeof(src));
            what = "no serial number on this device (looked in /proc/device-tree/serial-number, "
                   "/sys/firmware/devicetree/base/serial-number, /proc/cpuinfo, /etc/machine-id)";
        } else if (!strncmp(p, "{hostname}", 10)) {
            ok = hostname_value(root, value, sizeof(value), src, sizeof(src));
            what = "no host name on this device (/proc/sys/kernel/hostname)";
        } else {
            ok = mac_value(root, value, sizeof(value), src, sizeof(src));
            what = "no physical network interface with a hardware address (/sys/class/net)";
        }
        if (!ok)
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "nodeName: \"%s\": %s", pattern, what);
        size_t vl = strlen(value);
        if (n + vl < sizeof(name)) {
            memcpy(name + n, value, vl);
            n += vl;
        } else {
            n = sizeof(name) - 1; /* too long anyway: reported below */
        }
        size_t sl = strlen(srcs);
        drv_fmt_cut(srcs + sl, sizeof(srcs) - sl, "%s%s", sl ? ", " : "", src);
        p = end;
    }
    name[n] = '\0';
    if (n > DRV_NAME_NODE_MAX || drv_fmt(out, outsz, "%s", name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "nodeName: \"%s\" gives \"%.80s%s\" (%zu characters): a node name has "
                             "at most %d",
                             pattern, name, n > 80 ? "..." : "", n, DRV_NAME_NODE_MAX);
    if (!drv_name_dns_subdomain(name, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "nodeName: \"%s\" gives \"%s\", not a valid node name: %s", pattern,
                             name, why);
    if (source)
        drv_fmt_cut(source, sourcesz, "%s", srcs);
    return DRV_OK;
}

drv_err_t drv_nodename_state_parse(const char *text, size_t len, drv_nodename_state_t *out,
                                   drv_error_t *err)
{
    if (len > DRV_NODENAME_STATE_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "larger than %d bytes",
                             DRV_NODENAME_STATE_MAX);
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not a JSON object");
    }
    drv_nodename_state_t st = {0};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "nodeName");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
    char why[512];
    drv_err_t r = DRV_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != 1)
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "version: must be 1");
    else if (!cJSON_IsString(p) || strlen(p->valuestring) >= sizeof(st.pattern) ||
             !drv_name_node_is_pattern(p->valuestring) ||
             !drv_name_node_pattern(p->valuestring, NULL, 0))
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "pattern: must be a node name pattern");
    else if (!cJSON_IsString(nm) || strlen(nm->valuestring) > DRV_NAME_NODE_MAX ||
             drv_name_node_is_pattern(nm->valuestring) ||
             !drv_name_dns_subdomain(nm->valuestring, why, sizeof(why)))
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "nodeName: must be a node name");
    else if (src && !cJSON_IsString(src))
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "source: must be a string");
    if (r == DRV_OK) {
        if (drv_fmt(st.pattern, sizeof(st.pattern), "%s", p->valuestring) != DRV_OK ||
            drv_fmt(st.node_name, sizeof(st.node_name), "%s", nm->valuestring) != DRV_OK)
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "pattern or nodeName: too long");
        if (src)
            drv_fmt_cut(st.source, sizeof(st.source), "%s", src->valuestring);
        if (r == DRV_OK)
            *out = st;
    }
    cJSON_Delete(o);
    return r;
}

static drv_err_t state_write(const char *path, const char *state_dir,
                             const drv_nodename_state_t *st, drv_error_t *err)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "version", 1) &&
              cJSON_AddStringToObject(o, "pattern", st->pattern) &&
              cJSON_AddStringToObject(o, "nodeName", st->node_name) &&
              cJSON_AddStringToObject(o, "source", st->source);
    _cleanup_free_ char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "nodeName: state");
    size_t len = strlen(text);
    _cleanup_free_ char *line = malloc(len + 2);
    if (!line)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "nodeName: state");
    memcpy(line, text, len);
    line[len++] = '\n';
    drv_err_t r = drv_file_mkdir_p(state_dir, 0700, err);
    if (r == DRV_OK)
        r = drv_file_write_atomic(path, line, len, 0600, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "nodeName: keep the filled name");
    return DRV_OK;
}

drv_err_t drv_nodename_resolve(drv_agent_config_t *cfg, const char *root, drv_error_t *err)
{
    if (!cfg->node_name_pattern[0])
        return DRV_OK;
    char path[512];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, DRV_NODENAME_STATE_FILE) >=
        sizeof(path))
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir: too long");
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_file_read_capped(path, DRV_NODENAME_STATE_MAX, &text, &len, &e);
    if (r == DRV_OK || r == DRV_ERR_TOOBIG) {
        drv_nodename_state_t st;
        if (r == DRV_OK)
            r = drv_nodename_state_parse(text, len, &st, &e);
        if (r == DRV_OK && !strcmp(st.pattern, cfg->node_name_pattern)) {
            if (drv_fmt(cfg->node_name, sizeof(cfg->node_name), "%s", st.node_name) == DRV_OK)
                return DRV_OK;
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "nodeName: \"%s\" too long", st.node_name);
        }
        if (r == DRV_OK) {
            drv_log_warn("nodeName pattern changed: filling it again",
                         "path=%s old=%s was=%s new=%s", path, st.pattern, st.node_name,
                         cfg->node_name_pattern);
        } else {
            drv_log_error("corrupt node name state moved aside; filling the name again",
                          "path=%s error=\"%s\"", path, drv_error_msg(&e));
            drv_error_t qe = DRV_ERROR_INIT;
            if (drv_file_quarantine(path, &qe) != DRV_OK)
                return drv_error_set(err, qe.code, qe.sys_errno, "nodeName: %s",
                                     drv_error_msg(&qe));
        }
    } else if (r != DRV_ERR_NOTFOUND) {
        return drv_error_set(err, r, e.sys_errno, "nodeName: %s", drv_error_msg(&e));
    }
    drv_nodename_state_t st = {0};
    r = drv_fmt(st.pattern, sizeof(st.pattern), "%s", cfg->node_name_pattern);
    if (r != DRV_OK)
        return drv_error_set(err, r, 0, "nodeName: pattern too long");
    r = drv_nodename_fill(cfg->node_name_pattern, root, st.node_name, sizeof(st.node_name),
                          st.source, sizeof(st.source), err);
    if (r == DRV_OK)
        r = state_write(path, cfg->state_dir, &st, err);
    if (r != DRV_OK)
        return r;
    drv_log_info("node name filled from its pattern", "node=%s pattern=%s source=\"%s\" path=%s",
                 st.node_name, st.pattern, st.source, path);
    r = drv_fmt(cfg->node_name, sizeof(cfg->node_name), "%s", st.node_name);
    if (r != DRV_OK)
        return drv_error_set(err, r, 0, "nodeName: \"%s\" too long", st.node_name);
    return DRV_OK;
}
